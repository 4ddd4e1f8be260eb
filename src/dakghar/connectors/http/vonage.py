"""Vonage SMS API: ``POST /sms/json``, form-encoded, ``api_key`` and ``api_secret`` in the body.

Fields: ``from``, ``to`` (digits), ``text``, ``type`` (``unicode`` for UCS-2 text, else ``text``),
``status-report-req``, ``callback``, ``ttl`` (milliseconds), ``client-ref`` (our message id) and,
for India, ``entity-id`` and ``content-id`` (DLT). The answer is HTTP 200 with one entry per
part in ``messages``, each with its own ``status`` (``"0"`` = accepted) and ``message-id``; a
non-zero status is an error from the table below. Delivery receipts (``messageId``, ``status``,
``err-code``) arrive as form fields, JSON or query parameters. With a signature secret, Vonage
signs them (``sig``): every other parameter sorted, as ``&name=value`` with ``&`` and ``=`` in
values replaced by ``_``, then MD5 over that plus the secret (``md5hash``, the default) or an
HMAC keyed by the secret (``md5``, ``sha1``, ``sha256``, ``sha512``). Without one, the callback
URL carries our shared secret instead.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import msgspec

from dakghar.connectors.base import Accepted, ConnectorError, Outbound, Report
from dakghar.connectors.http.base import (
    Answer,
    Callback,
    CallbackRejected,
    HttpConnector,
    HttpSettings,
    Request,
    secret_matches,
)
from dakghar.core.message import ErrorCode as E

TEMPORARY = (True, E.CONNECTOR_UNAVAILABLE.value)
REJECTED = (False, E.CARRIER_REJECTED.value)
# Per-message status codes of /sms/json -> (temporary, our error_code).
ERRORS: dict[str, tuple[bool, str]] = {
    "1": TEMPORARY,  # throttled
    "2": REJECTED,  # missing parameters
    "3": REJECTED,  # invalid parameters
    "4": TEMPORARY,  # invalid credentials: our configuration
    "5": TEMPORARY,  # internal error
    "6": (False, E.INVALID_NUMBER.value),  # invalid message: unrecognised number prefix
    "7": REJECTED,  # number barred
    "8": TEMPORARY,  # partner account barred
    "9": TEMPORARY,  # partner quota violation (not enough credit)
    "10": TEMPORARY,  # too many existing binds
    "11": TEMPORARY,  # account not enabled for HTTP
    "12": REJECTED,  # message too long
    "14": TEMPORARY,  # invalid signature
    "15": REJECTED,  # invalid sender address
    "22": REJECTED,  # invalid network code
    "23": TEMPORARY,  # invalid callback URL: our configuration
    "29": REJECTED,  # non-whitelisted destination
    "32": TEMPORARY,  # signature and api secret disallowed
    "33": (False, E.INVALID_NUMBER.value),  # number de-activated
}
SLOW_DOWN = {"1", "10"}
# Receipt status -> ours; accepted and buffered are not final.
STATUSES = {"delivered": "delivered", "expired": "expired", "failed": "failed",
            "rejected": "rejected", "unknown": "failed"}  # fmt: skip
# Receipt err-code -> our error_code (others: undelivered).
REPORT_ERRORS = {
    "4": E.DND_BLOCKED.value,  # call barred by user
    "6": E.CARRIER_REJECTED.value,  # anti-spam rejection
    "9": E.INVALID_NUMBER.value,  # illegal number
    "10": E.CARRIER_REJECTED.value,  # illegal message
    "11": E.CARRIER_REJECTED.value,  # unroutable
    "14": E.CARRIER_REJECTED.value,  # number blocked by carrier
    "50": E.CARRIER_REJECTED.value,  # entity filter (DLT)
    "51": E.CARRIER_REJECTED.value,  # header filter (DLT)
    "52": E.CARRIER_REJECTED.value,  # content filter (DLT)
    "53": E.CARRIER_REJECTED.value,  # consent filter (DLT)
    "54": E.CARRIER_REJECTED.value,  # regulation error
}
METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
MIN_TTL_MS, MAX_TTL_MS = 20_000, 604_800_000


@dataclass(frozen=True, slots=True)
class VonageConfig:
    """Vonage credentials, sender and webhook signing."""

    api_key: str
    api_secret: str
    sender: str | None = None  # 'from' when the message names none
    signature_secret: str | None = None
    signature_method: str = "md5hash"

    def __post_init__(self) -> None:
        if self.signature_method not in METHODS:
            raise ValueError(f"signature_method must be one of {list(METHODS)}")


def vonage_signature(params: dict[str, str], secret: str, method: str = "md5hash") -> str:
    """The ``sig`` Vonage computes over ``params`` (without ``sig``), hex."""
    payload = "".join(
        f"&{k}={params[k].replace('&', '_').replace('=', '_')}" for k in sorted(params)
    )
    if method == "md5hash":
        return hashlib.md5((payload + secret).encode()).hexdigest()
    return hmac.new(secret.encode(), payload.encode(), method).hexdigest()


class VonageConnector(HttpConnector):
    """Vonage's SMS API."""

    type = "vonage"

    def __init__(self, name: str, settings: HttpSettings, config: VonageConfig) -> None:
        super().__init__(name, settings)
        self.config = config

    def build(self, message: Outbound) -> Request:
        ttl = max(MIN_TTL_MS, min(MAX_TTL_MS, message.validity_seconds * 1000))
        form = {
            "api_key": self.config.api_key,
            "api_secret": self.config.api_secret,
            "from": (message.sender or self.config.sender or "").lstrip("+"),
            "to": message.to.lstrip("+"),
            "text": message.body,
            "type": "unicode" if message.encoding == "UCS-2" else "text",
            "ttl": str(ttl),
            "client-ref": message.message_id,
        }
        if self.settings.status_callback_url and message.want_report:
            form.update({"status-report-req": "1", "callback": self.settings.status_callback_url})
        if message.entity_id:
            form["entity-id"] = message.entity_id
        if message.template_id:
            form["content-id"] = message.template_id
        return Request("POST", "/sms/json", form=form)

    def accepted(self, answer: Answer) -> Accepted:
        body = answer.json()
        parts = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(parts, list) or not parts:
            raise ConnectorError(f"{self.name}: answer without messages", temporary=True,
                                 maybe_sent=True, error_code=E.CONNECTOR_UNAVAILABLE)  # fmt: skip
        ids = []
        for i, part in enumerate(parts):
            status = str(part.get("status", ""))
            if status != "0":
                raise self._error(status, str(part.get("error-text", "")), partial=i > 0)
            ids.append(str(part.get("message-id", "")))
        return Accepted(provider_ids=ids)

    def refused(self, answer: Answer) -> ConnectorError:
        body = answer.json()
        status = str(body.get("status", "")) if isinstance(body, dict) else ""
        text = str(body.get("error-text", "")) if isinstance(body, dict) else ""
        if answer.status in (401, 403):
            status = "4"
        return self._error(status, f"HTTP {answer.status} {text}".strip(), partial=False)

    def _error(self, status: str, text: str, *, partial: bool) -> ConnectorError:
        temporary, ours = ERRORS.get(status, REJECTED)
        return ConnectorError(f"Vonage status {status}: {text}", temporary=temporary,
                              error_code=ours, maybe_sent=partial,
                              slow_down=status in SLOW_DOWN)  # fmt: skip

    def balance_request(self) -> Request:
        params = {"api_key": self.config.api_key, "api_secret": self.config.api_secret}
        return Request("GET", "/account/get-balance", params=params)

    def read_balance(self, answer: Answer) -> float | None:
        body = answer.json()
        return float(body["value"]) if isinstance(body, dict) else None

    def _params(self, callback: Callback) -> dict[str, str]:
        params = dict(callback.query)
        params.pop("secret", None)
        params.update(callback.form)
        if not callback.form and callback.body.strip().startswith(b"{"):
            try:
                decoded = msgspec.json.decode(callback.body)
            except msgspec.DecodeError as exc:
                raise ValueError(f"a Vonage receipt is not valid JSON: {exc}") from exc
            params.update({k: str(v) for k, v in decoded.items() if v is not None})
        return params

    def verify(self, callback: Callback) -> None:
        secret = self.config.signature_secret
        if not secret:
            secret_matches(callback, self.settings.callback_secret)
            return
        params = self._params(callback)
        given = params.pop("sig", "")
        expected = vonage_signature(params, secret, self.config.signature_method)
        if not given or not hmac.compare_digest(expected.lower(), given.lower()):
            raise CallbackRejected("the receipt's sig does not match")

    def parse(self, callback: Callback) -> list[Report]:
        params = self._params(callback)
        message_id, raw = params.get("messageId"), params.get("status")
        if not message_id or not raw:
            raise ValueError("a Vonage receipt needs messageId and status")
        status = STATUSES.get(raw)
        if status is None:
            return []
        code = params.get("err-code", "")
        if status == "delivered":
            error = None
        elif status == "expired":
            error = E.EXPIRED.value
        else:
            error = REPORT_ERRORS.get(code, E.UNDELIVERED.value)
        detail = f"vonage:{raw}" + (f" err-code {code}" if code and code != "0" else "")
        return [Report(self.name, message_id, status, error_code=error, detail=detail)]
