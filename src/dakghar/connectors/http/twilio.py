"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``.

The request is form-encoded with HTTP basic auth (Account SID, Auth Token): ``To``, ``Body``,
``From`` (or ``MessagingServiceSid``), ``StatusCallback`` and ``ValidityPeriod`` (seconds, at most
14,400). Twilio picks GSM-7 or UCS-2 itself and has no per-message DLT fields (Indian sender
registration lives in the Twilio console). A ``201`` carries the message ``sid``; an error carries
Twilio's numeric ``code``, mapped below. Status callbacks are form posts (``MessageSid``,
``MessageStatus``, ``ErrorCode``) signed with ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed by
the Auth Token, over the callback URL followed by every POST parameter as name+value, sorted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from dakghar.connectors.base import Accepted, ConnectorError, Outbound, Report
from dakghar.connectors.http.base import (
    Answer,
    Callback,
    CallbackRejected,
    HttpConnector,
    HttpSettings,
    Request,
    error_for,
)
from dakghar.core.message import ErrorCode as E

MAX_VALIDITY = 14_400
TEMPORARY = (True, E.CONNECTOR_UNAVAILABLE.value)
REJECTED = (False, E.CARRIER_REJECTED.value)
# Twilio error codes (twilio.com/docs/api/errors) -> (temporary, our error_code).
ERRORS: dict[int, tuple[bool, str]] = {
    20003: TEMPORARY,  # authentication failed: our configuration; the next provider may send it
    20005: TEMPORARY,  # account not active
    20429: TEMPORARY,  # too many requests
    21211: (False, E.INVALID_NUMBER.value),  # invalid 'To' phone number
    21214: (False, E.INVALID_NUMBER.value),  # 'To' number cannot be reached
    21217: (False, E.INVALID_NUMBER.value),  # phone number does not appear to be valid
    21614: (False, E.INVALID_NUMBER.value),  # 'To' number is not a valid mobile number
    21408: REJECTED,  # permission to send to this region is not enabled
    21612: REJECTED,  # cannot route to this number from this sender
    21606: REJECTED,  # 'From' number is not a valid, SMS-capable number
    21212: REJECTED,  # invalid 'From' number
    21602: REJECTED,  # body required
    21617: REJECTED,  # body exceeds 1,600 characters
    21610: (False, E.DND_BLOCKED.value),  # the recipient replied STOP
    21611: TEMPORARY,  # the sender's queue is full
    30001: TEMPORARY,  # queue overflow
    30002: TEMPORARY,  # account suspended
}
SLOW_DOWN = {20429, 21611, 30001}
# Final MessageStatus values -> ours; queued, sending, sent, accepted, scheduled are not final.
STATUSES = {
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
# Delivery error codes in callbacks -> our error_code.
REPORT_ERRORS = {
    "30003": E.UNDELIVERED.value,  # unreachable handset
    "30004": E.CARRIER_REJECTED.value,  # message blocked
    "30005": E.INVALID_NUMBER.value,  # unknown destination
    "30006": E.INVALID_NUMBER.value,  # landline or unreachable carrier
    "30007": E.CARRIER_REJECTED.value,  # filtered by the carrier
    "30008": E.UNDELIVERED.value,  # unknown error
    "21610": E.DND_BLOCKED.value,  # the recipient replied STOP
}


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """Twilio credentials and sender."""

    account_sid: str
    auth_token: str
    sender: str | None = None  # 'From' when the message names none
    messaging_service_sid: str | None = None


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """``X-Twilio-Signature`` for a POST to ``url`` with ``params``."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port and with the default port (as Twilio's validator)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = "443" if parts.scheme == "https" else "80"
    bare = urlunsplit(parts._replace(netloc=host))
    ported = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
    return [url, bare, ported]


class TwilioConnector(HttpConnector):
    """Twilio Programmable Messaging."""

    type = "twilio"

    def __init__(self, name: str, settings: HttpSettings, config: TwilioConfig) -> None:
        super().__init__(name, settings)
        self.config = config
        token = f"{config.account_sid}:{config.auth_token}".encode()
        self._auth = {"Authorization": "Basic " + base64.b64encode(token).decode()}
        self._path = f"/2010-04-01/Accounts/{config.account_sid}"

    def build(self, message: Outbound) -> Request:
        form = {"To": message.to, "Body": message.body}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        sender = message.sender or self.config.sender
        if sender:
            form["From"] = sender
        if self.settings.status_callback_url and message.want_report:
            form["StatusCallback"] = self.settings.status_callback_url
        form["ValidityPeriod"] = str(max(1, min(MAX_VALIDITY, message.validity_seconds)))
        return Request("POST", f"{self._path}/Messages.json", form=form, headers=self._auth)

    def accepted(self, answer: Answer) -> Accepted:
        body = answer.json()
        sid = body.get("sid") if isinstance(body, dict) else None
        if not isinstance(sid, str) or not sid:
            raise ConnectorError(f"{self.name}: answer without a sid", temporary=True,
                                 maybe_sent=True, error_code=E.CONNECTOR_UNAVAILABLE)  # fmt: skip
        return Accepted(provider_ids=[sid])

    def refused(self, answer: Answer) -> ConnectorError:
        body = answer.json()
        code = body.get("code") if isinstance(body, dict) else None
        text = body.get("message") if isinstance(body, dict) else None
        detail = f"Twilio {answer.status} code {code}: {text}"
        if answer.status in (401, 403) and code is None:
            code = 20003
        error = error_for(detail, ERRORS, code, REJECTED)
        error.slow_down = code in SLOW_DOWN
        return error

    def balance_request(self) -> Request:
        return Request("GET", f"{self._path}/Balance.json", headers=self._auth)

    def read_balance(self, answer: Answer) -> float | None:
        body = answer.json()
        return float(body["balance"]) if isinstance(body, dict) else None

    def verify(self, callback: Callback) -> None:
        given = callback.headers.get("x-twilio-signature", "")
        url = self.settings.status_callback_url or callback.url
        for candidate in _url_variants(url):
            expected = twilio_signature(self.config.auth_token, candidate, dict(callback.form))
            if hmac.compare_digest(expected.encode(), given.encode()):
                return
        raise CallbackRejected("X-Twilio-Signature does not match")

    def parse(self, callback: Callback) -> list[Report]:
        sid = callback.form.get("MessageSid") or callback.form.get("SmsSid")
        raw = callback.form.get("MessageStatus") or callback.form.get("SmsStatus")
        if not sid or not raw:
            raise ValueError("a Twilio status callback needs MessageSid and MessageStatus")
        status = STATUSES.get(raw)
        if status is None:
            return []  # queued, sending, sent, accepted: not final
        code = callback.form.get("ErrorCode") or None
        error = (
            None if status == "delivered" else REPORT_ERRORS.get(code or "", E.UNDELIVERED.value)
        )
        detail = f"twilio:{raw}" + (f" error {code}" if code else "")
        return [Report(self.name, sid, status, error_code=error, detail=detail)]
