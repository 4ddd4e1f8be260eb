"""Each provider connector against a local server speaking that provider's documented API.

Real sockets on 127.0.0.1: success with the provider's id recorded, the request in the
provider's format (unicode and DLT fields), each error class mapped (invalid number permanent,
bad credentials temporary so the route fails over, 429 slow down, 5xx temporary, a timeout after
sending ``maybe_sent``, a refused connection not sent), balance polling and configuration errors.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dakghar.connectors.base import ConnectorError, Outbound, Report
from dakghar.connectors.http.base import HttpConnector
from dakghar.connectors.http.factory import build_http_connector
from dakghar.pipeline.runtime import build_connectors
from dakghar.settings import SettingsError
from tests.connectors_http.fakes import FakeProvider, table

KINDS = ["twilio", "plivo", "vonage", "msg91"]


async def ignore(report: Report) -> None:
    raise AssertionError(f"no report expected: {report}")


def outbound(**over: Any) -> Outbound:
    values: dict[str, Any] = {
        "message_id": "msg_01",
        "to": "+919812345678",
        "sender": None,
        "body": "Your order has shipped",
        "encoding": "GSM-7",
        "type": "transactional",
        "validity_seconds": 3600,
        "template_id": "1107161234567890123",
        "entity_id": "1101234567890123456",
    }
    values.update(over)
    return Outbound(**values)


@pytest.fixture(params=KINDS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeProvider]:
    provider = FakeProvider(request.param)
    await provider.start()
    yield provider
    await provider.stop()


async def started(fake: FakeProvider, **extra: Any) -> HttpConnector:
    connector = build_http_connector(fake.kind, table(fake.kind, fake.base_url, **extra))
    assert isinstance(connector, HttpConnector)
    await connector.start(ignore)
    return connector


async def test_a_message_is_accepted_with_the_providers_id(fake: FakeProvider) -> None:
    c = await started(fake, status_callback_url="https://gw.example/v1/connectors/x/callback")
    try:
        accepted = await c.submit(outbound())
        assert accepted.provider_ids == [fake.accepted[0]["id"]]
        assert c.state()["accepted"] == 1 and c.ready
    finally:
        await c.stop()
    assert not c.ready


async def test_the_request_is_in_the_providers_format_with_unicode_and_dlt(
    fake: FakeProvider,
) -> None:
    url = "https://gw.example/v1/connectors/x/callback"
    c = await started(fake, status_callback_url=url)
    try:
        await c.submit(outbound(body="नमस्ते", encoding="UCS-2", validity_seconds=600))
    finally:
        await c.stop()
    sent = fake.requests[-1]["body"]
    if fake.kind == "twilio":
        assert sent == {"To": "+919812345678", "Body": "नमस्ते", "From": "+15005550006",
                        "StatusCallback": url, "ValidityPeriod": "600"}  # fmt: skip
    elif fake.kind == "plivo":
        assert sent == {"dst": "919812345678", "text": "नमस्ते", "type": "sms", "src": "DAKGHR",
                        "url": url, "method": "POST", "dlt_entity_id": "1101234567890123456",
                        "dlt_template_id": "1107161234567890123"}  # fmt: skip
    elif fake.kind == "vonage":
        assert sent["type"] == "unicode" and sent["to"] == "919812345678"
        assert (sent["entity-id"], sent["content-id"]) == ("1101234567890123456",
                                                          "1107161234567890123")  # fmt: skip
        assert sent["ttl"] == "600000" and sent["client-ref"] == "msg_01"
        assert (sent["status-report-req"], sent["callback"]) == ("1", url)
    else:
        assert sent["unicode"] == 1 and sent["DLT_TE_ID"] == "1107161234567890123"
        assert sent["sms"] == [{"message": "नमस्ते", "to": ["919812345678"]}]
        assert sent["sender"] == "DAKGHR" and sent["route"] == "4"
        assert fake.requests[-1]["headers"]["authkey"] == "s3cret-token"


async def failure(fake: FakeProvider, mode: str, **extra: Any) -> ConnectorError:
    fake.script = [mode]
    c = await started(fake, **extra)
    try:
        with pytest.raises(ConnectorError) as info:
            await c.submit(outbound())
    finally:
        await c.stop()
    assert fake.accepted == []
    return info.value


async def test_an_invalid_number_fails_permanently(fake: FakeProvider) -> None:
    err = await failure(fake, "bad_number")
    assert (err.temporary, err.error_code, err.maybe_sent) == (False, "invalid_number", False)


async def test_bad_credentials_are_temporary_so_the_route_fails_over(fake: FakeProvider) -> None:
    err = await failure(fake, "auth")
    assert (err.temporary, err.error_code) == (True, "connector_unavailable")


async def test_http_429_asks_the_dispatcher_to_slow_down(fake: FakeProvider) -> None:
    err = await failure(fake, "429")
    assert (err.temporary, err.slow_down, err.maybe_sent) == (True, True, False)
    assert err.error_code == "connector_unavailable"


async def test_nothing_is_sent_until_retry_after_has_passed() -> None:
    fake = FakeProvider("twilio")
    await fake.start()
    fake.script = ["429"]  # with Retry-After: 1
    c = build_http_connector("tw", table("twilio", fake.base_url))
    await c.start(ignore)
    try:
        for _ in range(2):
            with pytest.raises(ConnectorError) as info:
                await c.submit(outbound())
            assert info.value.slow_down
        assert len(fake.requests) == 1
        await asyncio.sleep(1.05)
        assert (await c.submit(outbound())).provider_ids == [fake.accepted[0]["id"]]
    finally:
        await c.stop()
        await fake.stop()


async def test_a_server_error_is_temporary(fake: FakeProvider) -> None:
    err = await failure(fake, "500")
    assert (err.temporary, err.slow_down, err.maybe_sent) == (True, False, False)


async def test_a_timeout_after_sending_may_have_sent_it(fake: FakeProvider) -> None:
    err = await failure(fake, "slow", timeout=0.3)
    assert (err.temporary, err.maybe_sent) == (True, True)
    assert "timed out" in err.detail


async def test_a_refused_connection_was_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = build_http_connector("tw", table("twilio", f"http://127.0.0.1:{port}"))
    await c.start(ignore)
    try:
        with pytest.raises(ConnectorError) as info:
            await c.submit(outbound())
    finally:
        await c.stop()
    assert (info.value.temporary, info.value.maybe_sent) == (True, False)
    assert "cannot connect" in info.value.detail


async def test_the_balance_is_polled_into_state(fake: FakeProvider) -> None:
    c = await started(fake, balance_interval=0.05, low_balance=10)
    try:
        for _ in range(100):
            if c.state()["balance"] is not None:
                break
            await asyncio.sleep(0.02)
    finally:
        await c.stop()
    assert c.state()["balance"] == {"twilio": 12.5, "plivo": 7.25, "vonage": 3.14,
                                    "msg91": 1500.0}[fake.kind]  # fmt: skip
    assert c.state()["low_balance"] is (fake.kind in ("plivo", "vonage"))


async def test_the_pool_never_opens_more_requests_than_max_in_flight() -> None:
    fake = FakeProvider("twilio", delay=0.05)
    await fake.start()
    peak = 0
    c = build_http_connector("tw", table("twilio", fake.base_url, max_in_flight=4))
    await c.start(ignore)
    try:

        async def one(i: int) -> None:
            nonlocal peak
            await c.submit(outbound(to=f"+9198123456{i:02d}"))

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, len(fake.requests) - len(fake.accepted))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(one(i) for i in range(20)))
        watcher.cancel()
    finally:
        await c.stop()
        await fake.stop()
    assert len(fake.accepted) == 20
    assert 1 <= peak <= 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"bogus": 1}, "unknown keys ['bogus']"),
        ({"auth_token": "inline"}, "unknown keys ['auth_token']"),
        ({"auth_token_env": "NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE"),
        ({"max_in_flight": 0}, "max_in_flight"),
    ],
)
def test_configuration_errors_name_the_problem(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_http_connector("tw", table("twilio", "http://127.0.0.1:9", **extra))


def test_a_missing_credential_is_named() -> None:
    with pytest.raises(ValueError, match="authkey_env"):
        build_http_connector("m", {"type": "msg91", "name": "m"})


async def test_a_long_vonage_message_records_every_parts_id() -> None:
    fake = FakeProvider("vonage")
    await fake.start()
    c = build_http_connector("v", table("vonage", fake.base_url))
    await c.start(ignore)
    try:
        accepted = await c.submit(outbound(body="x" * 200))
    finally:
        await c.stop()
        await fake.stop()
    assert len(accepted.provider_ids) == 2 and len(set(accepted.provider_ids)) == 2


def test_build_connectors_takes_http_types_and_names_the_known_ones() -> None:
    built = build_connectors([table(kind, "http://127.0.0.1:9", name=kind) for kind in KINDS])
    assert {name: c.state()["type"] for name, c in built.items()} == {k: k for k in KINDS}
    with pytest.raises(SettingsError, match="known: smpp, msg91, plivo, twilio, vonage"):
        build_connectors([{"name": "x", "type": "carrier-pigeon"}])
    with pytest.raises(SettingsError, match=r"connectors\[0\] \(tw\): unknown keys \['colour'\]"):
        build_connectors([table("twilio", "http://127.0.0.1:9", name="tw", colour="red")])
