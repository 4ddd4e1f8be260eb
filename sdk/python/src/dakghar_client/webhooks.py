"""Verify ``Dakghar-Signature`` on the webhooks a gateway POSTs (API.md "Delivery webhooks").

The header is ``t=<unix seconds>,v1=<hex>[,v1=<hex>]``: each ``v1`` is HMAC-SHA256 of
``"<t>.<raw body>"`` under one webhook secret. During a secret rotation the gateway signs with
the new and the old secret, so a receiver that knows either accepts; it may also hold both (a
list of secrets). The same rules as the gateway's own ``dakghar.webhooks.signing``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from dakghar_client.errors import DakgharClientError

HEADER = "Dakghar-Signature"


class SignatureError(DakgharClientError):
    """The webhook's signature is missing, malformed, wrong, or too old to trust."""


def _parts(header: str) -> list[tuple[str, str]]:
    pairs = (p.strip().split("=", 1) for p in header.split(","))
    return [(k.strip(), v.strip()) for k, v in (p for p in pairs if len(p) == 2)]


def verify(
    secret: str | Sequence[str],
    header: str | None,
    raw_body: bytes | str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless ``header`` signs ``raw_body`` with ``secret`` (or
    any of a list of secrets) and its timestamp is within ``tolerance`` seconds of now.

    Pass the body exactly as received: re-encoded JSON has other bytes and does not verify.
    """
    if not header:
        raise SignatureError(f"no {HEADER} header")
    parts = _parts(header)
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise SignatureError(f"{HEADER} has no valid t= timestamp")
    timestamp = int(stamps[0])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"{HEADER} timestamp is {int(current - timestamp)} s off")
    body = raw_body.encode() if isinstance(raw_body, str) else raw_body
    signed = f"{timestamp}.".encode() + body
    secrets = [secret] if isinstance(secret, str) else list(secret)
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    given = [v for k, v in parts if k == "v1"]
    if not given:
        raise SignatureError(f"{HEADER} has no v1= signature")
    # compare_digest over every pair, so the time taken says nothing about which one matched
    matched = [hmac.compare_digest(e, g) for e in expected for g in given]
    if not any(matched):
        raise SignatureError(f"{HEADER} does not match the webhook secret")


def sign(secret: str | Sequence[str], raw_body: bytes, timestamp: int | None = None) -> str:
    """A ``Dakghar-Signature`` value for ``raw_body`` (for testing your receiver)."""
    when = int(time.time()) if timestamp is None else timestamp
    secrets = [secret] if isinstance(secret, str) else list(secret)
    signed = f"{when}.".encode() + raw_body
    macs = (hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets)
    return f"t={when}," + ",".join(f"v1={m}" for m in macs)
