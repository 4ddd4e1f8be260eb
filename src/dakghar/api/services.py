"""What the API handlers work with, built once by ``dakghar.gateway`` and kept on ``app.state``.

Also the request-body and idempotency plumbing that every creating endpoint shares.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from dakghar.api.auth import Authenticator
from dakghar.api.problems import validation_from_msgspec
from dakghar.errors import IdempotencyConflict, PayloadTooLarge, ValidationError
from dakghar.pipeline.accept import Acceptor
from dakghar.pipeline.switches import Switchboard
from dakghar.pipeline.view import DeliveryView
from dakghar.settings import Settings
from dakghar.store.base import IdempotencyRecord, Store
from dakghar.webhooks.urls import check_callback_url, gateway_addresses

if TYPE_CHECKING:
    from dakghar.campaigns.service import CampaignService
    from dakghar.observability.alerts import AlertEvaluator
    from dakghar.observability.metrics import Metrics
    from dakghar.otp import OtpService

JSON = "application/json"
T = TypeVar("T")


@dataclass
class Services:
    """What the handlers work with: built once by the composition root (``dakghar.gateway``),
    each part typed; nothing is built on a first request."""

    settings: Settings
    store: Store
    auth: Authenticator
    acceptor: Acceptor
    switches: Switchboard
    metrics: Metrics
    otp: OtpService
    campaigns: CampaignService | None = None  # None: this store cannot hold campaigns
    alerts: AlertEvaluator | None = None  # the ``[[alerts]]`` evaluator, where it runs
    readiness: dict[str, Any] = field(default_factory=dict)
    delivery: DeliveryView | None = None  # the dispatcher, in this process or another
    # URLs that passed check_callback: the check is a pure function of the URL and the
    # settings, and applications send the same callback URL with every message.
    _callbacks_ok: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def check_callback(self, url: str | None, *, field: str = "callback_url") -> None:
        """Refuse a callback or inbound URL the gateway must not POST to (SSRF), with 422
        ``invalid_callback_url``, before anything is written. The one check for messages,
        batches, the account and campaigns; the sender checks again at delivery."""
        if url is None or (url, field) in self._callbacks_ok:
            return
        check_callback_url(
            url,
            allow_private=self.settings.webhooks.allow_private_networks,
            own=gateway_addresses(self.settings),
            field=field,
        )
        if len(self._callbacks_ok) >= 10_000:
            self._callbacks_ok.clear()
        self._callbacks_ok.add((url, field))


def services(request: Request) -> Services:
    """The :class:`Services` of the app serving ``request``."""
    svc: Services = request.app.state.services
    return svc


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ValidationError("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    ctype = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if body and ctype not in (JSON, "application/*+json", "") and not ctype.endswith("+json"):
        raise ValidationError(f"Content-Type must be {JSON}, not {ctype!r}")
    return body


# What a malformed body can raise while msgspec decodes it: RecursionError for JSON nested
# deeper than the decoder goes (a 422 like any other malformed body, never a 500).
DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def decode_error(exc: Exception) -> ValidationError:
    """The ``validation_error`` problem for a body that failed to decode."""
    if isinstance(exc, RecursionError):
        return ValidationError(
            "request body is nested too deeply to be a valid request",
            errors=[{"field": "body", "code": "validation_error"}],
        )
    assert isinstance(exc, msgspec.ValidationError | msgspec.DecodeError | UnicodeDecodeError)
    return validation_from_msgspec(exc)


def decode_json(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode a JSON request body, every failure a ``validation_error`` problem."""
    if not body:
        raise ValidationError("request body is empty; send a JSON object")
    try:
        return decoder.decode(body)
    except DECODE_ERRORS as exc:
        raise decode_error(exc) from None


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, validated."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
        raise ValidationError(
            "Idempotency-Key must be 1-255 printable ASCII characters",
            errors=[{"field": "Idempotency-Key", "code": "validation_error"}],
        )
    return key


def request_hash(request: Request, body: bytes) -> str:
    """What "the same body" means for idempotency: method, path and exact bytes."""
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(b"\0" + request.url.path.encode() + b"\0")
    h.update(body)
    return h.hexdigest()


def replay(record: IdempotencyRecord, digest: str) -> Response:
    """The stored first response, or 409 when the key came back with another body."""
    if record.request_hash != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was used with a different request body within 24 h"
        )
    return Response(
        record.response,
        status_code=record.status_code,
        media_type=JSON,
        headers={"Idempotent-Replayed": "true"},
    )
