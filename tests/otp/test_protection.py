"""Abuse limits, validation, and the rule that a live code never leaves in a response or a log."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
import structlog

from dakghar.core.keys import generate_key
from dakghar.observability.logging import configure_logging
from dakghar.store.base import ApiKey, now_ms
from tests.conftest import Gateway, Tenant
from tests.otp.conftest import Clock

NUMBER = "+919812345678"


def send(gw: Gateway, t: Tenant, **body: Any) -> Any:
    body.setdefault("to", NUMBER)
    return gw.client.post("/v1/otp", json=body, headers=t.headers)


def test_a_burst_to_many_numbers_of_one_range_is_blocked_as_sms_pumping(
    gateway: Gateway, clock: Clock
) -> None:
    t = gateway.tenant()
    for i in range(5):
        assert send(gateway, t, to=f"+91981234500{i}").status_code == 201
    clock.advance(20)
    r = send(gateway, t, to="+919812345077")
    assert r.status_code == 429
    problem = r.json()
    assert problem["code"] == "rate_limited"
    assert "SMS pumping" in problem["detail"]
    assert "+919812345xxx" in problem["detail"]
    assert r.headers["Retry-After"] == "40"
    # Another range, and numbers already seen in this one, are unaffected.
    assert send(gateway, t, to="+919812346001").status_code == 201
    assert send(gateway, t, to="+919812345001").status_code == 201
    assert gateway.services.otp.stats()["blocked"] == {"prefix": 1}
    clock.advance(41)
    assert send(gateway, t, to="+919812345077").status_code == 201


def test_one_number_gets_a_few_codes_at_once_then_one_a_minute(
    gateway: Gateway, clock: Clock
) -> None:
    t = gateway.tenant()
    for _ in range(4):
        assert send(gateway, t).status_code == 201
    r = send(gateway, t)
    assert r.status_code == 429
    assert "this number" in r.json()["detail"]
    assert r.headers["Retry-After"] == "60"
    assert send(gateway, t, to="+919812345679").status_code == 201  # other numbers go on
    clock.advance(60)
    assert send(gateway, t).status_code == 201
    assert gateway.services.otp.stats()["blocked"] == {"number": 1}


def test_the_account_limit_applies_to_otp_sends_across_its_keys(gateway: Gateway) -> None:
    t = gateway.tenant(rate_per_second=1, rate_burst=2)
    new = generate_key(gateway.settings.secret, "test")
    gateway.call(
        gateway.services.store.create_api_key,
        ApiKey(new.key_id, t.account.id, "test", new.key_hash, None, now_ms(), None),
    )
    second = Tenant(t.account, new.key)
    assert send(gateway, t, to="+919812345671").status_code == 201
    assert send(gateway, t, to="+919812341672").status_code == 201
    r = send(gateway, second, to="+919812349673")  # this key's own limit is untouched
    assert r.status_code == 429
    assert "for this account" in r.json()["detail"]
    assert r.headers["Retry-After"] == "1"
    assert gateway.services.otp.stats()["blocked"] == {"account": 1}


def test_countries_outside_the_accounts_allow_list_are_refused(gateway: Gateway) -> None:
    t = gateway.tenant(allowed_countries="IN")
    r = send(gateway, t, to="+447911123456")
    assert r.status_code == 422
    assert r.json()["code"] == "country_not_allowed"
    assert send(gateway, t).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"length": 3}, "length"),
        ({"length": 11}, "length"),
        ({"ttl_seconds": 30}, "ttl_seconds"),
        ({"template": "Welcome to the app"}, "template"),
        ({"to": ""}, "to"),
    ],
)
def test_invalid_requests_are_refused_with_the_field(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    t = gateway.tenant()
    r = send(gateway, t, **body)
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "12ab56", "to": NUMBER}, "code"),
        ({"code": "123", "to": NUMBER}, "code"),
        ({"code": "123456"}, "id"),
        ({"code": "123456", "id": "otp_x", "to": NUMBER}, "id"),
    ],
)
def test_a_check_needs_a_well_formed_code_and_exactly_one_of_id_or_to(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    t = gateway.tenant()
    r = gateway.client.post("/v1/otp/check", json=body, headers=t.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == field


def test_a_live_code_never_appears_in_responses_logs_or_metrics(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("debug", "json")
    structlog.configure(cache_logger_on_first_use=False)  # later tests print elsewhere
    caplog.set_level(logging.DEBUG)
    try:
        t = gateway.tenant(mode="live")
        r = send(gateway, t, template="Your code is {code}")
        assert r.status_code == 201
        otp = r.json()
        store = gateway.services.store
        # The only place the code exists in clear: the outgoing message, inside the store.
        row = gateway.call(store.get_message, t.account.id, otp["message_id"])
        code = re.fullmatch(r"Your code is (\d{6})", row.body)[1]  # type: ignore[index]
        assert row.redacted_body == "Your code is ******"

        answers = [r.text]
        answers.append(gateway.client.post(
            "/v1/otp/check", json={"id": otp["id"], "code": "000000" if code != "000000"
                                   else "111111"}, headers=t.headers).text)  # fmt: skip
        answers.append(
            gateway.client.post(
                "/v1/otp/check", json={"to": NUMBER, "code": code}, headers=t.headers
            ).text
        )
        answers.append(
            gateway.client.post(
                "/v1/otp/check", json={"to": NUMBER, "code": code}, headers=t.headers
            ).text
        )
        answers.append(gateway.client.post(f"/v1/otp/{otp['id']}/resend", headers=t.headers).text)
        answers.append(gateway.client.get("/metrics").text)

        # A carrier takes the message: from then on the message shows the masked text.
        claimed, _ = gateway.call(store.claim, 0, [t.account.id], 10, lease_ms=30_000)
        assert [m.id for m in claimed] == [otp["message_id"]]
        sent = gateway.call(store.mark_sent, otp["message_id"], "smsc-a", ["p-1"])
        assert sent.body == "Your code is ******"
        got = gateway.client.get(f"/v1/messages/{otp['message_id']}", headers=t.headers)
        assert got.json()["body"] == "Your code is ******"
        answers.append(got.text)
        answers.append(gateway.client.get("/v1/messages", headers=t.headers).text)

        out = capsys.readouterr()
        logs = out.out + out.err + caplog.text
        assert "otp sent" in logs and "otp checked" in logs
        for text in [*answers, logs]:
            assert code not in text
        assert NUMBER not in logs and "+91******5678" in logs  # numbers are masked in logs
    finally:
        structlog.reset_defaults()


def test_a_live_otp_message_shows_the_masked_text_even_before_a_carrier_has_it(
    gateway: Gateway,
) -> None:
    t = gateway.tenant(mode="live")
    otp = send(gateway, t, template="Your code is {code}").json()
    got = gateway.client.get(f"/v1/messages/{otp['message_id']}", headers=t.headers).json()
    assert got["body"] == "Your code is ******"
