"""MSG91 (India): ``POST /api/v2/sendsms`` with the ``authkey`` header and a JSON body.

The body names the sender id, the ``route`` (4 = transactional), ``country``, ``unicode`` (1 for
UCS-2 text) and the DLT template id (``DLT_TE_ID``), then one ``sms`` entry with the message and
its number (digits, country code first). MSG91 answers ``{"type": "success", "message":
<request id>}`` or ``{"type": "error", "message": ..., "code": ...}``, often with HTTP 200, so the
``type`` decides. Delivery reports come to the webhook set in the MSG91 panel: version 2 posts a
form field ``data`` holding a JSON list of ``{requestId, report: [{number, status, desc}]}``,
version 3 posts one JSON object ``{requestId, number, status, desc}``; both are read. MSG91 does
not sign them, so the webhook URL carries our shared secret (``callback_secret_env``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from dakghar.connectors.base import Accepted, ConnectorError, Outbound, Report
from dakghar.connectors.http.base import (
    Answer,
    Callback,
    HttpConnector,
    HttpSettings,
    Request,
    error_for,
)
from dakghar.core.message import ErrorCode as E

TEMPORARY = (True, E.CONNECTOR_UNAVAILABLE.value)
REJECTED = (False, E.CARRIER_REJECTED.value)
# MSG91 API error codes -> (temporary, our error_code).
ERRORS: dict[str, tuple[bool, str]] = {
    "101": REJECTED,  # missing mobile number
    "102": REJECTED,  # missing message
    "103": REJECTED,  # missing sender id
    "106": TEMPORARY,  # missing authentication key: our configuration
    "107": TEMPORARY,  # missing route
    "202": (False, E.INVALID_NUMBER.value),  # invalid mobile number
    "203": REJECTED,  # invalid sender id
    "207": TEMPORARY,  # invalid authentication key
    "208": TEMPORARY,  # IP blacklisted
    "301": TEMPORARY,  # insufficient balance: another provider may send it
    "302": TEMPORARY,  # expired account
    "303": TEMPORARY,  # banned account
    "306": TEMPORARY,  # route unavailable
    "310": REJECTED,  # SMS too long
    "418": TEMPORARY,  # IP not whitelisted
}
DUPLICATE = "311"  # the same request twice within 10 s: the first one may have gone out
# Report status codes -> (our status, our error_code); others (pending, submitted) are not final.
STATUSES: dict[str, tuple[str, str | None]] = {
    "1": ("delivered", None),
    "2": ("undelivered", E.UNDELIVERED.value),
    "9": ("rejected", E.DND_BLOCKED.value),  # NDNC: the number is on the do-not-disturb list
    "16": ("rejected", E.CARRIER_REJECTED.value),
    "25": ("rejected", E.CARRIER_REJECTED.value),
    "17": ("rejected", E.CARRIER_REJECTED.value),  # blocked number
}


@dataclass(frozen=True, slots=True)
class Msg91Config:
    """MSG91 credentials and sending options."""

    authkey: str
    sender: str | None = None  # the DLT-registered header when the message names none
    route: str = "4"  # 4 = transactional, 1 = promotional
    country: str = "0"  # 0 = numbers carry their country code


class Msg91Connector(HttpConnector):
    """MSG91's send-SMS API."""

    type = "msg91"

    def __init__(self, name: str, settings: HttpSettings, config: Msg91Config) -> None:
        super().__init__(name, settings)
        self.config = config
        self._headers = {"authkey": config.authkey}

    def build(self, message: Outbound) -> Request:
        body: dict[str, Any] = {
            "sender": message.sender or self.config.sender or "",
            "route": self.config.route,
            "country": self.config.country,
            "sms": [{"message": message.body, "to": [message.to.lstrip("+")]}],
        }
        if message.encoding == "UCS-2":
            body["unicode"] = 1
        if message.template_id:
            body["DLT_TE_ID"] = message.template_id
        return Request("POST", "/api/v2/sendsms", json=body, headers=self._headers)

    def accepted(self, answer: Answer) -> Accepted:
        body = answer.json()
        if not isinstance(body, dict):
            raise ConnectorError(f"{self.name}: answer is not JSON", temporary=True,
                                 maybe_sent=True, error_code=E.CONNECTOR_UNAVAILABLE)  # fmt: skip
        if body.get("type") != "success":
            raise self._error(answer.status, body)
        return Accepted(provider_ids=[str(body.get("message", ""))])

    def refused(self, answer: Answer) -> ConnectorError:
        body = answer.json()
        return self._error(answer.status, body if isinstance(body, dict) else {})

    def _error(self, status: int, body: dict[str, Any]) -> ConnectorError:
        code = str(body.get("code", ""))
        detail = f"MSG91 {status} code {code}: {body.get('message')}"
        if code == DUPLICATE:
            return ConnectorError(detail, temporary=True, maybe_sent=True,
                                  error_code=E.CONNECTOR_UNAVAILABLE)  # fmt: skip
        if status in (401, 403) and code not in ERRORS:
            code = "207"
        return error_for(detail, ERRORS, code, REJECTED)

    def balance_request(self) -> Request:
        return Request("GET", "/api/balance.php", params={"authkey": self.config.authkey,
                                                         "type": self.config.route})  # fmt: skip

    def read_balance(self, answer: Answer) -> float | None:
        return float(answer.body.decode().strip())

    def parse(self, callback: Callback) -> list[Report]:
        try:
            if "data" in callback.form:
                batches = msgspec.json.decode(callback.form["data"])
            else:
                batches = msgspec.json.decode(callback.body)
        except msgspec.DecodeError as exc:
            raise ValueError(f"an MSG91 report is JSON: {exc}") from exc
        if isinstance(batches, dict):  # webhook version 3: one report per request
            batches = [{"requestId": batches.get("requestId"), "report": [batches]}]
        if not isinstance(batches, list):
            raise ValueError("an MSG91 report is a list of requests")
        reports = []
        for batch in batches:
            request_id = batch.get("requestId") if isinstance(batch, dict) else None
            if not request_id:
                raise ValueError("an MSG91 report needs requestId")
            for entry in batch.get("report") or []:
                known = STATUSES.get(str(entry.get("status")))
                if known is None:
                    continue
                status, error = known
                detail = f"msg91:{entry.get('status')} {entry.get('desc', '')}".strip()
                reports.append(Report(self.name, str(request_id), status, error, detail))
        return reports
