"""Delivery-report callbacks: signature checks (cross-checked with the providers' own SDKs where
they ship a validator), shared secrets for providers that do not sign, and status parsing."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from dakghar.connectors.http.base import Callback, CallbackRejected, HttpConnector
from dakghar.connectors.http.factory import build_http_connector
from dakghar.connectors.http.plivo import plivo_signature_v3
from dakghar.connectors.http.twilio import twilio_signature
from dakghar.connectors.http.vonage import vonage_signature
from tests.connectors_http.fakes import SECRET, table

URL = "https://gw.example.com/v1/connectors/p/callback"


def connector(kind: str, **extra: Any) -> HttpConnector:
    c = build_http_connector("p", table(kind, "http://127.0.0.1:9", **extra))
    assert isinstance(c, HttpConnector)
    return c


def form_callback(url: str, form: dict[str, str], headers: dict[str, str]) -> Callback:
    query = dict(p.split("=", 1) for p in url.partition("?")[2].split("&") if p)
    return Callback(url, "POST", {k.lower(): v for k, v in headers.items()}, query, form,
                    urlencode(form).encode())  # fmt: skip


TWILIO_FORM = {
    "MessageSid": "SM0123",
    "MessageStatus": "undelivered",
    "ErrorCode": "30005",
    "AccountSid": "AC0123456789abcdef",
    "To": "+919812345678",
    "ApiVersion": "2010-04-01",
}


def test_twilio_signatures_match_twilios_request_validator() -> None:
    validator = pytest.importorskip("twilio.request_validator").RequestValidator(SECRET)
    ours = twilio_signature(SECRET, URL, TWILIO_FORM)
    assert ours == validator.compute_signature(URL, TWILIO_FORM)
    assert validator.validate(URL, TWILIO_FORM, ours)
    c = connector("twilio", status_callback_url=URL)
    sdk_signed = form_callback(URL, TWILIO_FORM, {"X-Twilio-Signature": ours})
    [report] = c.receive(sdk_signed)
    assert (report.provider_id, report.status, report.error_code) == (
        "SM0123", "undelivered", "invalid_number")  # fmt: skip


def test_twilio_rejects_a_tampered_or_unsigned_callback() -> None:
    c = connector("twilio", status_callback_url=URL)
    signature = twilio_signature(SECRET, URL, TWILIO_FORM)
    tampered = {**TWILIO_FORM, "MessageStatus": "delivered"}
    with pytest.raises(CallbackRejected):
        c.receive(form_callback(URL, tampered, {"X-Twilio-Signature": signature}))
    with pytest.raises(CallbackRejected):
        c.receive(form_callback(URL, TWILIO_FORM, {}))


def test_twilio_statuses_map_to_ours_and_interim_ones_are_ignored() -> None:
    c = connector("twilio", status_callback_url=URL)

    def parse(**form: str) -> list[Any]:
        return c.parse(form_callback(URL, {"MessageSid": "SM1", **form}, {}))

    assert [(r.status, r.error_code) for r in parse(MessageStatus="delivered")] == [
        ("delivered", None)
    ]
    assert parse(MessageStatus="sent") == []
    assert parse(MessageStatus="failed", ErrorCode="21610")[0].error_code == "dnd_blocked"
    with pytest.raises(ValueError):
        c.parse(form_callback(URL, {"MessageStatus": "delivered"}, {}))


PLIVO_FORM = {
    "MessageUUID": "db3ce55a-7f1d-11e1-8ea7-1231380bc196",
    "Status": "undelivered",
    "ErrorCode": "2000",
    "To": "919812345678",
    "From": "DAKGHR",
}


@pytest.mark.parametrize("url", [URL, URL + "?b=2&a=1"])
def test_plivo_v3_signatures_match_plivos_validator(url: str) -> None:
    sdk = pytest.importorskip("plivo.utils.signature_v3")
    nonce = "12345678901234567890"
    ours = plivo_signature_v3(SECRET, url, nonce, PLIVO_FORM)
    assert sdk.validate_v3_signature("POST", url, nonce, SECRET, ours, dict(PLIVO_FORM))
    c = connector("plivo", status_callback_url=url)
    headers = {"X-Plivo-Signature-V3": f"bogus,{ours}", "X-Plivo-Signature-V3-Nonce": nonce}
    [report] = c.receive(form_callback(url, PLIVO_FORM, headers))
    assert (report.status, report.error_code) == ("undelivered", "dnd_blocked")
    wrong = {**headers, "X-Plivo-Signature-V3-Nonce": "other"}
    with pytest.raises(CallbackRejected):
        c.receive(form_callback(url, PLIVO_FORM, wrong))


def test_plivo_statuses() -> None:
    c = connector("plivo")

    def parse(status: str, code: str = "") -> list[tuple[str, str | None]]:
        form = {"MessageUUID": "u1", "Status": status, "ErrorCode": code}
        return [(r.status, r.error_code) for r in c.parse(form_callback(URL, form, {}))]

    assert parse("delivered", "000") == [("delivered", None)]
    assert parse("queued") == [] and parse("sent") == []
    assert parse("failed", "50") == [("failed", "invalid_number")]
    assert parse("undelivered", "420") == [("expired", "expired")]
    assert parse("rejected", "30") == [("rejected", "carrier_rejected")]


VONAGE_DLR = {
    "msisdn": "919812345678",
    "to": "DAKGHR",
    "network-code": "40410",
    "messageId": "0A0000001234567B",
    "price": "0.03330000",
    "status": "failed",
    "scts": "2001011400",
    "err-code": "9",
    "api-key": "AC0123456789abcdef",
    "message-timestamp": "2020-01-01 12:00:00",
    "timestamp": "1577880000",
    "nonce": "a=b&c",
}


def vonage_by_hand(params: dict[str, str], secret: str, method: str) -> str:
    """Vonage's documented recipe, written out independently of the connector's code."""
    text = ""
    for key in sorted(params):
        text += "&" + key + "=" + params[key].replace("&", "_").replace("=", "_")
    if method == "md5hash":
        return hashlib.md5((text + secret).encode()).hexdigest()
    import hmac

    return hmac.new(secret.encode(), text.encode(), getattr(hashlib, method)).hexdigest()


@pytest.mark.parametrize("method", ["md5hash", "sha256", "sha512"])
def test_vonage_signed_receipts(method: str) -> None:
    secret = "vonage-signature-secret"
    sig = vonage_by_hand(VONAGE_DLR, secret, method)
    assert vonage_signature(VONAGE_DLR, secret, method) == sig
    c = connector("vonage", signature_method=method)
    [report] = c.receive(form_callback(URL, {**VONAGE_DLR, "sig": sig.upper()}, {}))
    assert (report.provider_id, report.status, report.error_code) == (
        "0A0000001234567B", "failed", "invalid_number")  # fmt: skip
    as_json = Callback(URL, "POST", {"content-type": "application/json"}, {}, {},
                       json.dumps({**VONAGE_DLR, "sig": sig}).encode())  # fmt: skip
    assert c.receive(as_json)[0].status == "failed"
    with pytest.raises(CallbackRejected):
        c.receive(form_callback(URL, {**VONAGE_DLR, "status": "delivered", "sig": sig}, {}))


def test_vonage_without_a_signature_secret_needs_the_shared_secret() -> None:
    c = build_http_connector(
        "v",
        {"type": "vonage", "api_key": "k", "api_secret_env": "FAKE_TOKEN",
         "callback_secret_env": "FAKE_CB",
         "status_callback_url": "https://gw.example.com/v1/connectors/v/callback"},
    )  # fmt: skip
    assert isinstance(c, HttpConnector)
    assert (
        c.settings.status_callback_url
        == URL.replace("/p/", "/v/") + "?secret=callback-shared-secret"
    )
    dlr = {"messageId": "m1", "status": "delivered", "err-code": "0"}
    [ok] = c.receive(form_callback(URL + "?secret=callback-shared-secret", dlr, {}))
    assert ok.status == "delivered"
    with pytest.raises(CallbackRejected):
        c.receive(form_callback(URL + "?secret=guess", dlr, {}))


def test_msg91_reports_need_the_shared_secret_and_parse_both_webhook_versions() -> None:
    c = connector("msg91")
    v2 = json.dumps([{"senderId": "DAKGHR", "requestId": "3365646f1234", "userId": "1",
                      "report": [{"date": "2024-05-22 10:06:20", "number": "919812345678",
                                  "status": "9", "desc": "NDNC"}]}])  # fmt: skip
    url = URL + "?secret=callback-shared-secret"
    [report] = c.receive(form_callback(url, {"data": v2}, {}))
    assert (report.provider_id, report.status, report.error_code) == (
        "3365646f1234", "rejected", "dnd_blocked")  # fmt: skip
    v3 = {"requestId": "r2", "number": "919812345678", "status": "1", "desc": "DELIVERED"}
    body = json.dumps(v3).encode()
    [delivered] = c.receive(
        Callback(url, "POST", {}, {"secret": "callback-shared-secret"}, {}, body)
    )
    assert (delivered.provider_id, delivered.status) == ("r2", "delivered")
    with pytest.raises(CallbackRejected):
        c.receive(form_callback(URL, {"data": v2}, {}))
    with pytest.raises(ValueError):
        c.receive(Callback(url, "POST", {}, {"secret": "callback-shared-secret"}, {}, b"nope"))
