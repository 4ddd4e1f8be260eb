"""Plivo: ``POST /v1/Account/{auth_id}/Message/`` with a JSON body and HTTP basic auth.

The body carries ``src``, ``dst`` (digits, country code first), ``text``, ``type: "sms"``, the
delivery-report ``url`` and ``method``, and for India the DLT ``dlt_entity_id`` and
``dlt_template_id``; Plivo picks the encoding itself. A ``202`` lists ``message_uuid``s; errors
are ``{"error": ...}`` with the HTTP status telling the class. Delivery reports are form posts
(``MessageUUID``, ``Status``, ``ErrorCode``) signed with ``X-Plivo-Signature-V3``: base64
HMAC-SHA256, keyed by the auth token, over the URL (with a sorted query and ``?`` when the
body has fields), the body's fields as name+value sorted, ``.``, and the
``X-Plivo-Signature-V3-Nonce``; the header may list several signatures, comma-separated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from dakghar.connectors.base import Accepted, ConnectorError, Outbound, Report
from dakghar.connectors.http.base import (
    Answer,
    Callback,
    CallbackRejected,
    HttpConnector,
    HttpSettings,
    Request,
)
from dakghar.core.message import ErrorCode as E

# Final Status values -> ours; queued and sent are not final.
STATUSES = {"delivered": "delivered", "undelivered": "undelivered", "failed": "failed",
            "rejected": "rejected"}  # fmt: skip
# Plivo SMS error codes in reports -> our error_code (others: undelivered).
REPORT_ERRORS = {
    "30": E.CARRIER_REJECTED.value,  # spam detected
    "40": E.CARRIER_REJECTED.value,  # invalid source number
    "50": E.INVALID_NUMBER.value,  # invalid destination number
    "70": E.UNDELIVERED.value,  # destination permanently unavailable
    "90": E.CARRIER_REJECTED.value,  # no route available
    "100": E.CARRIER_REJECTED.value,  # prohibited by carrier
    "110": E.CARRIER_REJECTED.value,  # message too long
    "200": E.DND_BLOCKED.value,  # the destination sent STOP to this source
    "420": E.EXPIRED.value,  # message expired
    "2000": E.DND_BLOCKED.value,  # destination in DND (India)
}


@dataclass(frozen=True, slots=True)
class PlivoConfig:
    """Plivo credentials and sender."""

    auth_id: str
    auth_token: str
    sender: str | None = None  # 'src' when the message names none
    powerpack_uuid: str | None = None  # send from a number pool instead of 'src'


def plivo_signature_v3(auth_token: str, url: str, nonce: str, params: dict[str, str]) -> str:
    """``X-Plivo-Signature-V3`` for a POST of ``params`` to ``url``."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    if query:
        base += "?" + "&".join(f"{k}={v}" for k, v in query) + ("." if params else "")
    elif params:
        base += "?"
    base += "".join(k + params[k] for k in sorted(params))
    payload = f"{base}.{nonce}".encode()
    return base64.b64encode(
        hmac.new(auth_token.encode(), payload, hashlib.sha256).digest()
    ).decode()


class PlivoConnector(HttpConnector):
    """Plivo's Message API."""

    type = "plivo"

    def __init__(self, name: str, settings: HttpSettings, config: PlivoConfig) -> None:
        super().__init__(name, settings)
        self.config = config
        token = f"{config.auth_id}:{config.auth_token}".encode()
        self._auth = {"Authorization": "Basic " + base64.b64encode(token).decode()}
        self._path = f"/v1/Account/{config.auth_id}"

    def build(self, message: Outbound) -> Request:
        body: dict[str, Any] = {"dst": message.to.lstrip("+"), "text": message.body, "type": "sms"}
        if self.config.powerpack_uuid and not message.sender:
            body["powerpack_uuid"] = self.config.powerpack_uuid
        else:
            body["src"] = message.sender or self.config.sender or ""
        if self.settings.status_callback_url and message.want_report:
            body.update(url=self.settings.status_callback_url, method="POST")
        if message.entity_id:
            body["dlt_entity_id"] = message.entity_id
        if message.template_id:
            body["dlt_template_id"] = message.template_id
        return Request("POST", f"{self._path}/Message/", json=body, headers=self._auth)

    def accepted(self, answer: Answer) -> Accepted:
        body = answer.json()
        ids = body.get("message_uuid") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids:
            raise ConnectorError(f"{self.name}: answer without message_uuid", temporary=True,
                                 maybe_sent=True, error_code=E.CONNECTOR_UNAVAILABLE)  # fmt: skip
        return Accepted(provider_ids=[str(i) for i in ids])

    def refused(self, answer: Answer) -> ConnectorError:
        body = answer.json()
        text = str(body.get("error", "")) if isinstance(body, dict) else answer.body[:200].decode()
        detail = f"Plivo {answer.status}: {text}"
        if answer.status in (401, 402, 403):  # credentials, credit: another provider may send it
            return ConnectorError(detail, temporary=True, error_code=E.CONNECTOR_UNAVAILABLE)
        lowered = text.lower()
        if "dst" in lowered or "destination" in lowered:
            return ConnectorError(detail, temporary=False, error_code=E.INVALID_NUMBER)
        return ConnectorError(detail, temporary=False, error_code=E.CARRIER_REJECTED)

    def balance_request(self) -> Request:
        return Request("GET", f"{self._path}/", headers=self._auth)

    def read_balance(self, answer: Answer) -> float | None:
        body = answer.json()
        return float(body["cash_credits"]) if isinstance(body, dict) else None

    def verify(self, callback: Callback) -> None:
        nonce = callback.headers.get("x-plivo-signature-v3-nonce", "")
        given = callback.headers.get("x-plivo-signature-v3", "").split(",")
        url = self.settings.status_callback_url or callback.url
        expected = plivo_signature_v3(self.config.auth_token, url, nonce, dict(callback.form))
        if not nonce or not any(hmac.compare_digest(expected, g.strip()) for g in given):
            raise CallbackRejected("X-Plivo-Signature-V3 does not match")

    def parse(self, callback: Callback) -> list[Report]:
        uuid, raw = callback.form.get("MessageUUID"), callback.form.get("Status")
        if not uuid or not raw:
            raise ValueError("a Plivo report needs MessageUUID and Status")
        status = STATUSES.get(raw)
        if status is None:
            return []
        code = callback.form.get("ErrorCode") or ""
        error: str | None = REPORT_ERRORS.get(code, E.UNDELIVERED.value)
        if error == E.EXPIRED.value:
            status = "expired"
        if status == "delivered":
            error = None
        detail = f"plivo:{raw}" + (f" error {code}" if code and code != "000" else "")
        return [Report(self.name, uuid, status, error_code=error, detail=detail)]
