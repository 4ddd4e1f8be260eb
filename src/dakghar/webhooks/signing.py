"""Webhook signatures (pure): ``Dakghar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC key is the account's webhook secret and the signed text is ``"<t>.<raw body>"``
(API.md). Receivers verify with :func:`verify`, which also bounds the timestamp's age so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HEADER = "Dakghar-Signature"


def sign(secret: str | Sequence[str], body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp``: one ``v1=`` per secret, in order
    (during a rotation the new secret's first, then the old one's)."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    signed = f"{timestamp}.".encode() + body
    macs = (hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets)
    return f"t={timestamp}," + ",".join(f"v1={m}" for m in macs)


def verify(secret: str, body: bytes, header: str, now: int, tolerance: int = 300) -> bool:
    """True when ``header`` is a valid signature of ``body`` no older than ``tolerance`` s."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return any(
        hmac.compare_digest(expected, value)
        for key, value in (p.split("=", 1) for p in header.split(",") if "=" in p)
        if key == "v1"
    )
