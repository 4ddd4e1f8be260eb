"""SMPP over TLS: the connector against the simulated carrier listening with a trustme certificate.

Certificates are made at test time by trustme (a throwaway CA); the connector verifies the
carrier's chain and host name against that CA through ``ca_file``, as it would a carrier's
against the system trust store, and refuses a carrier whose certificate another CA signed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvloop

from dakghar.connectors.base import ConnectorError, Outbound, Report
from dakghar.connectors.smpp import SmppConnector, SmppConnectorConfig
from dakghar.pipeline.runtime import build_connectors
from dakghar.settings import SettingsError
from dakghar.smpp.simulator import Behaviour, Simulator, SimulatorConfig

pytestmark = pytest.mark.timeout(60)


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(context)
    return context


def outbound(to: str = "+919812345678") -> Outbound:
    return Outbound(
        message_id="msg_tls",
        to=to,
        sender="DKGHAR",
        body="Your order 123 has shipped",
        encoding="GSM-7",
        type="transactional",
        validity_seconds=3600,
    )


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def tls_simulator(context: ssl.SSLContext) -> Simulator:
    behaviour = Behaviour(receipt_delay_ms=(1.0, 5.0))
    sim = Simulator(SimulatorConfig(port=0, default=behaviour, seed=7))
    await sim.start(tls=context)
    return sim


def table(sim: Simulator, **tls: Any) -> dict[str, Any]:
    assert sim.address is not None
    host, port = sim.address
    return {"name": "carrier", "type": "smpp", "host": host, "port": port,
            "system_id": "acme", "password": "pw", "tls": True, **tls}  # fmt: skip


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "carrier-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def sim(ca: trustme.CA) -> AsyncIterator[Simulator]:
    s = await tls_simulator(server_context(ca, "127.0.0.1"))
    yield s
    await s.stop()


async def deliver_one(sim: Simulator, config: SmppConnectorConfig) -> tuple[list[Report], str]:
    """Bind ``config``'s connector, submit one message, wait for its receipt."""
    conn = SmppConnector("carrier", config)
    reports: list[Report] = []

    async def sink(report: Report) -> None:
        reports.append(report)

    await conn.start(sink)
    try:
        await until(lambda: conn.ready)
        accepted = await conn.submit(outbound())
        await until(lambda: len(reports) == 1)
    finally:
        await conn.stop()
    return reports, accepted.provider_ids[0]


async def test_connector_binds_over_tls_verified_against_ca_file_and_gets_the_receipt(
    sim: Simulator, ca_file: str
) -> None:
    records: list[Any] = []
    sim.on_submit = records.append
    config = SmppConnectorConfig.from_settings(table(sim, ca_file=ca_file))
    assert config.tls and config.tls_verify
    reports, provider_id = await deliver_one(sim, config)
    assert [(r.status, r.provider_id) for r in reports] == [("delivered", provider_id)]
    assert [r.destination_addr for r in records] == ["919812345678"]
    assert sim.stats.binds >= 1


def test_connector_delivers_over_tls_on_uvloop_as_the_gateway_runs_it(
    ca: trustme.CA, ca_file: str
) -> None:
    async def scenario() -> list[Report]:
        sim = await tls_simulator(server_context(ca, "127.0.0.1"))
        try:
            config = SmppConnectorConfig.from_settings(table(sim, ca_file=ca_file))
            return (await deliver_one(sim, config))[0]
        finally:
            await sim.stop()

    reports = uvloop.run(scenario())
    assert [r.status for r in reports] == ["delivered"]


async def refused_bind(sim: Simulator, config: SmppConnectorConfig) -> str:
    """Start a connector that must not bind; return its last bind error."""
    conn = SmppConnector("carrier", config)

    async def sink(_report: Report) -> None:
        pass

    await conn.start(sink)
    try:
        client = conn.clients[0]
        await until(lambda: client.state()["last_error"] is not None)
        assert not conn.ready
        with pytest.raises(ConnectorError, match="no bind is up"):
            await conn.submit(outbound())
        return str(client.state()["last_error"])
    finally:
        await conn.stop()


async def test_verifying_connector_refuses_a_carrier_certified_by_another_ca(
    ca_file: str,
) -> None:
    impostor = await tls_simulator(server_context(trustme.CA(), "127.0.0.1"))
    try:
        config = SmppConnectorConfig.from_settings(table(impostor, ca_file=ca_file))
        error = await refused_bind(impostor, config)
        assert "CERTIFICATE_VERIFY_FAILED" in error
        assert impostor.stats.binds == 0
    finally:
        await impostor.stop()


async def test_verifying_connector_refuses_a_certificate_for_another_host_name(
    ca: trustme.CA, ca_file: str
) -> None:
    elsewhere = await tls_simulator(server_context(ca, "smsc.example.net"))
    try:
        config = SmppConnectorConfig.from_settings(table(elsewhere, ca_file=ca_file))
        error = await refused_bind(elsewhere, config)
        assert "CERTIFICATE_VERIFY_FAILED" in error
        assert "127.0.0.1" in error  # the name that did not match
        assert elsewhere.stats.binds == 0
    finally:
        await elsewhere.stop()


async def test_verification_turned_off_explicitly_binds_to_a_self_signed_test_smsc() -> None:
    test_smsc = await tls_simulator(server_context(trustme.CA(), "smsc.test"))
    try:
        config = SmppConnectorConfig.from_settings(table(test_smsc, tls_verify=False))
        reports, _ = await deliver_one(test_smsc, config)
        assert [r.status for r in reports] == ["delivered"]
    finally:
        await test_smsc.stop()


async def test_a_plain_connector_cannot_bind_to_a_tls_carrier(sim: Simulator) -> None:
    plain = {k: v for k, v in table(sim).items() if k != "tls"}
    config = SmppConnectorConfig.from_settings({**plain, "bind_timeout": 0.5})
    assert config.tls_context() is None
    # The carrier waits for a TLS ClientHello and gets a bind_pdu: no bind_resp ever comes.
    assert "SmppTimeout" in await refused_bind(sim, config)
    assert sim.stats.binds == 0


def connector_error(tmp_path: Path, **tls: Any) -> str:
    base = {"name": "airtel", "type": "smpp", "host": "127.0.0.1", "port": 2775,
            "system_id": "acme"}  # fmt: skip
    with pytest.raises(SettingsError) as caught:
        build_connectors([{**base, **tls}])
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_tls_settings_errors_are_one_line_naming_the_connector(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert connector_error(tmp_path, tls=True, ca_file=str(missing)) == (
        f"connectors[0] (airtel): ca_file {missing}: no such file"
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert connector_error(tmp_path, tls=True, ca_file=str(junk)) == (
        f"connectors[0] (airtel): ca_file {junk}: no PEM certificate in it"
    )
    assert connector_error(tmp_path, tls="yes") == (
        "connectors[0] (airtel): tls must be true or false"
    )
    assert connector_error(tmp_path, tls=True, tls_verify=0) == (
        "connectors[0] (airtel): tls_verify must be true or false"
    )
    assert connector_error(tmp_path, ca_file=str(junk)) == (
        "connectors[0] (airtel): ca_file and tls_verify apply only with tls = true"
    )


def test_tls_verification_is_on_unless_turned_off() -> None:
    base = {"name": "c", "host": "smsc.example.net", "port": 3550, "system_id": "x", "tls": True}
    verified = SmppConnectorConfig.from_settings(base).tls_context()
    assert verified is not None
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname
    assert verified.minimum_version >= ssl.TLSVersion.TLSv1_2
    unverified = SmppConnectorConfig.from_settings({**base, "tls_verify": False}).tls_context()
    assert unverified is not None and unverified.verify_mode == ssl.CERT_NONE
