"""The asyncio SMPP client and the SMPP connector, against the simulated carrier over real sockets.

Faults the simulator cannot script (an SMSC that stops answering enquire_link) come from a tiny
SMSC written here on the sans-IO Connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dakghar.connectors.base import ConnectorError, Outbound, Report
from dakghar.connectors.smpp import SmppConnector, SmppConnectorConfig, relative_time
from dakghar.smpp import pdu as p
from dakghar.smpp.client import SmppClient, SmppConnectionLost, SmppNotBound, SmppTimeout
from dakghar.smpp.connection import Connection, PduReceived, Role
from dakghar.smpp.dlr import is_receipt, parse_receipt
from dakghar.smpp.pdu import CommandStatus as S
from dakghar.smpp.simulator import Behaviour, Simulator, SimulatorConfig

pytestmark = pytest.mark.timeout(60)


async def simulator(**behaviour: Any) -> Simulator:
    behaviour.setdefault("receipt_delay_ms", (1.0, 5.0))
    sim = Simulator(SimulatorConfig(port=0, default=Behaviour(**behaviour), seed=3))
    await sim.start()
    return sim


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def submit_sm(to: str = "919812345678", text: bytes = b"hello", receipt: int = 1) -> p.SubmitSm:
    return p.SubmitSm(
        source_addr="DKGHAR",
        source_addr_ton=5,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=to,
        registered_delivery=receipt,
        short_message=text,
    )


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = await simulator()
    yield s
    await s.stop()


def client_for(sim: Simulator, **kw: Any) -> SmppClient:
    assert sim.address is not None
    return SmppClient(sim.address[0], sim.address[1], "acme", "pw", **kw)


async def test_binds_submits_and_acks_a_receipt_only_after_the_handler_returns(
    sim: Simulator,
) -> None:
    gate = asyncio.Event()
    seen: list[p.Pdu] = []

    async def handler(pdu: p.DeliverSm | p.DataSm) -> int:
        seen.append(pdu)
        await gate.wait()
        return 0

    c = client_for(sim, on_deliver=handler)
    await c.start()
    assert await c.wait_bound(5)
    resp = await c.submit(submit_sm())
    assert resp.command_status == 0 and isinstance(resp, p.SubmitSmResp)
    await until(lambda: len(seen) == 1)
    receipt = parse_receipt(seen[0].short_message, seen[0].tlvs)  # type: ignore[union-attr]
    assert is_receipt(seen[0]) and receipt is not None and receipt.matches(resp.message_id)
    await asyncio.sleep(0.1)
    assert sim.stats.receipts_acked == 0  # the handler has not returned yet
    gate.set()
    await until(lambda: sim.stats.receipts_acked == 1)
    assert c.state()["bound"] is True and c.state()["submitted"] == 1
    await c.stop()
    assert not c.bound


async def test_a_failing_handler_answers_temporary_error_and_the_receipt_comes_again(
    sim: Simulator,
) -> None:
    calls = 0

    async def flaky(pdu: p.DeliverSm | p.DataSm) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is down")
        return 0

    object.__setattr__(sim.config, "receipt_retry_ms", 50)
    c = client_for(sim, on_deliver=flaky)
    await c.start()
    await c.wait_bound(5)
    await c.submit(submit_sm())
    await until(lambda: sim.stats.receipts_acked == 1, timeout=10)
    assert calls == 2
    await c.stop()


async def test_the_window_bounds_outstanding_requests() -> None:
    sim = await simulator(accept_latency_ms=(100.0, 100.0))
    c = client_for(sim, window=2)
    await c.start()
    await c.wait_bound(5)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, c.window_in_use)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    t0 = time.monotonic()
    results = await asyncio.gather(*(c.submit(submit_sm(receipt=0)) for _ in range(6)))
    elapsed = time.monotonic() - t0
    watcher.cancel()
    assert all(r.command_status == 0 for r in results)
    assert peak == 2
    assert elapsed >= 0.28  # three rounds of two
    await c.stop()
    await sim.stop()


async def test_an_unanswered_request_times_out_and_frees_its_slot() -> None:
    sim = await simulator(timeout_rate=1.0)
    c = client_for(sim, window=1, request_timeout=0.2)
    await c.start()
    await c.wait_bound(5)
    with pytest.raises(SmppTimeout) as exc:
        await c.submit(submit_sm())
    assert exc.value.maybe_sent
    assert c.window_in_use == 0 and c.counters["timeouts"] == 1
    await c.stop()
    await sim.stop()


async def test_a_dropped_connection_fails_the_request_and_the_client_rebinds() -> None:
    sim = await simulator(drop_rate=1.0)
    c = client_for(sim, reconnect_min=0.05)
    await c.start()
    await c.wait_bound(5)
    with pytest.raises(SmppConnectionLost):
        await c.submit(submit_sm())
    await until(lambda: c.counters["reconnects"] >= 1 and c.bound)
    assert c.counters["binds"] >= 2
    await c.stop()
    await sim.stop()


async def test_wrong_credentials_never_bind_and_say_why() -> None:
    sim = Simulator(SimulatorConfig(port=0, system_id="acme", password="right"))
    await sim.start()
    c = client_for(sim, reconnect_min=0.05, reconnect_max=0.1)
    await c.start()
    assert not await c.wait_bound(0.5)
    assert "bind refused" in (c.state()["last_error"] or "")
    with pytest.raises(SmppNotBound):
        await c.submit(submit_sm())
    await c.stop()
    await sim.stop()


async def test_stop_lets_the_window_drain_then_unbinds() -> None:
    sim = await simulator(accept_latency_ms=(150.0, 150.0))
    c = client_for(sim)
    await c.start()
    await c.wait_bound(5)
    pending = asyncio.gather(*(c.submit(submit_sm(receipt=0)) for _ in range(5)))
    await asyncio.sleep(0.02)
    await c.stop()
    assert all(r.command_status == 0 for r in await pending)
    await until(lambda: sim.stats.bound_sessions == 0)
    await sim.stop()


class DeafSmsc:
    """Answers binds, then never answers enquire_link: the client must notice and rebind."""

    def __init__(self) -> None:
        self.binds = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(Role.SMSC)
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, PduReceived) and isinstance(event.pdu, p.BindTransceiver):
                    self.binds += 1
                    writer.write(conn.send(event.pdu.response(0, system_id="deaf")))
        writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])


async def test_a_link_that_stops_answering_enquire_link_is_rebuilt() -> None:
    smsc = DeafSmsc()
    port = await smsc.start()
    c = SmppClient(
        "127.0.0.1", port, "a", "b", enquire_link_interval=0.05, request_timeout=0.1,
        reconnect_min=0.05,
    )  # fmt: skip
    await c.start()
    await until(lambda: smsc.binds >= 2, timeout=5)
    await c.stop()
    assert smsc.server is not None
    smsc.server.close()


class ReceiptSmsc:
    """Binds, sends ``count`` receipts in one write, and records what comes back in order."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.received: list[p.Pdu] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(Role.SMSC)
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if not isinstance(event, PduReceived):
                    continue
                self.received.append(event.pdu)
                if isinstance(event.pdu, p.BindTransceiver | p.Unbind):
                    writer.write(conn.send(event.pdu.response(0)))
                if isinstance(event.pdu, p.BindTransceiver):
                    receipt = b"id:1 sub:001 dlvrd:001 stat:DELIVRD err:000 text:"
                    writer.write(b"".join(
                        conn.send(p.DeliverSm(esm_class=0x04, short_message=receipt))
                        for _ in range(self.count)
                    ))  # fmt: skip
        writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])


async def test_receipts_settled_together_are_answered_in_one_write_before_the_unbind() -> None:
    smsc = ReceiptSmsc(count=20)
    port = await smsc.start()
    gate = asyncio.Event()
    handled = 0

    async def handler(pdu: p.DeliverSm | p.DataSm) -> int:
        nonlocal handled
        handled += 1
        await gate.wait()  # one store commit settles them all
        return 0

    c = SmppClient("127.0.0.1", port, "a", "b", on_deliver=handler)
    await c.start()
    assert await c.wait_bound(5)
    await until(lambda: handled == 20)
    transport = c._transport
    assert transport is not None
    writes: list[bytes] = []
    real_write = transport.write
    transport.write = lambda data: (writes.append(bytes(data)), real_write(data))[1]  # type: ignore[method-assign]
    gate.set()
    await c.stop()
    answers = [pdu for pdu in smsc.received if isinstance(pdu, p.DeliverSmResp)]
    assert sorted(a.sequence_number for a in answers) == list(range(1, 21))
    assert all(a.command_status == 0 for a in answers)
    assert isinstance(smsc.received[-1], p.Unbind)  # every answer went out before it
    assert len(writes) == 2  # the twenty answers, then the unbind
    assert smsc.server is not None
    smsc.server.close()


# -- the connector ---------------------------------------------------------------------------


def outbound(to: str, body: str = "Your order has shipped", encoding: str = "GSM-7") -> Outbound:
    return Outbound(
        message_id="msg_1",
        to=to,
        sender="DKGHAR",
        body=body,
        encoding=encoding,
        type="transactional",
        validity_seconds=3600,
    )


@pytest.fixture
async def connector(sim: Simulator) -> AsyncIterator[tuple[SmppConnector, list[Report]]]:
    assert sim.address is not None
    config = SmppConnectorConfig.from_settings(
        {"name": "carrier", "type": "smpp", "host": "127.0.0.1", "port": sim.address[1],
         "system_id": "acme", "password": "pw", "binds": 2, "window": 10}
    )  # fmt: skip
    conn = SmppConnector("carrier", config)
    reports: list[Report] = []

    async def sink(r: Report) -> None:
        reports.append(r)

    await conn.start(sink)
    await until(lambda: conn.ready and all(c.bound for c in conn.clients))
    yield conn, reports
    await conn.stop()


async def test_connector_maps_receipts_and_magic_numbers(
    connector: tuple[SmppConnector, list[Report]],
) -> None:
    conn, reports = connector
    ok = await conn.submit(outbound("+919812345678"))
    undelivered = await conn.submit(outbound("+917000000002"))
    await until(lambda: len(reports) == 2)
    by_id = {r.provider_id: r for r in reports}
    assert by_id[ok.provider_ids[0]].status == "delivered"
    assert by_id[undelivered.provider_ids[0]].status == "undelivered"
    assert by_id[undelivered.provider_ids[0]].error_code == "undelivered"

    with pytest.raises(ConnectorError) as rejected:
        await conn.submit(outbound("+917000000001"))
    assert not rejected.value.temporary and rejected.value.error_code == "carrier_rejected"
    assert "ESME_RSUBMITFAIL" in rejected.value.detail
    with pytest.raises(ConnectorError) as throttled:
        await conn.submit(outbound("+917000000003"))
    assert throttled.value.temporary and throttled.value.slow_down
    assert conn.state()["type"] == "smpp" and len(conn.state()["binds"]) == 2


async def test_connector_splits_long_unicode_text_into_parts(
    sim: Simulator, connector: tuple[SmppConnector, list[Report]]
) -> None:
    conn, reports = connector
    parts: list[Any] = []
    sim.on_submit = parts.append
    accepted = await conn.submit(outbound("+919812345678", "नमस्ते दुनिया। " * 12, "UCS-2"))
    assert len(accepted.provider_ids) == len(parts) == 3
    assert {r.data_coding for r in parts} == {8}
    assert all(r.esm_class & 0x40 for r in parts)  # UDH indicator
    text = b"".join(r.short_message[6:] for r in parts).decode("utf-16-be")
    assert text == "नमस्ते दुनिया। " * 12
    assert parts[0].tlvs == {} and parts[0].source_addr == "DKGHAR"
    await until(lambda: len(reports) == 3)


def test_connector_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"name": "c", "host": "127.0.0.1", "port": 2775, "system_id": "x"}
    with pytest.raises(ValueError, match="unknown keys"):
        SmppConnectorConfig.from_settings({**base, "windw": 3})
    with pytest.raises(ValueError, match="is not set"):
        SmppConnectorConfig.from_settings({**base, "password_env": "NOPE_NOT_SET"})
    monkeypatch.setenv("SMSC_PW", "s3cret")
    assert (
        SmppConnectorConfig.from_settings({**base, "password_env": "SMSC_PW"}).password == "s3cret"
    )
    with pytest.raises(ValueError, match="long_messages"):
        SmppConnectorConfig.from_settings({**base, "long_messages": "pigeon"})
    assert relative_time(3600) == "000000010000000R"
    assert relative_time(86400 * 2 + 61) == "000002000101000R"


async def test_throttling_status_is_counted(sim: Simulator) -> None:
    c = client_for(sim)
    await c.start()
    await c.wait_bound(5)
    first = await c.submit(submit_sm("917000000003", b"again"))
    assert first.command_status == S.ESME_RTHROTTLED
    assert c.counters["throttled"] == 1
    await c.stop()


async def test_a_transmitter_receiver_pair_sends_on_one_bind_and_gets_receipts_on_the_other(
    sim: Simulator,
) -> None:
    assert sim.address is not None
    config = SmppConnectorConfig.from_settings(
        {"name": "pair", "host": "127.0.0.1", "port": sim.address[1], "system_id": "acme",
         "bind": "pair"}
    )  # fmt: skip
    conn = SmppConnector("pair", config)
    reports: list[Report] = []

    async def sink(r: Report) -> None:
        reports.append(r)

    await conn.start(sink)
    await until(lambda: all(c.bound for c in conn.clients))
    assert [c.mode for c in conn.clients] == ["transmitter", "receiver"]
    accepted = await conn.submit(outbound("+919812345678"))
    await until(lambda: len(reports) == 1)
    assert reports[0].provider_id == accepted.provider_ids[0]
    tx, rx = conn.clients
    assert tx.counters["submitted"] == 1 and tx.counters["delivered_in"] == 0
    assert rx.counters["delivered_in"] == 1
    await conn.stop()


# -- hostile or broken carriers, and bind fields the codec cannot send ------------------------


def test_connector_settings_refuse_bind_fields_over_the_smpp_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = {"name": "c", "host": "127.0.0.1", "port": 2775, "system_id": "x"}
    for field, limit in (("system_id", 15), ("password", 8), ("system_type", 12)):
        at_limit = SmppConnectorConfig.from_settings({**base, field: "a" * limit})
        assert getattr(at_limit, field) == "a" * limit
        with pytest.raises(
            ValueError, match=rf"^{field} is {limit + 1} octets; .* at most {limit}"
        ):
            SmppConnectorConfig.from_settings({**base, field: "a" * (limit + 1)})
    monkeypatch.setenv("SMSC_LONG_PW", "123456789")  # the same check for a password from the env
    with pytest.raises(ValueError, match="password is 9 octets") as caught:
        SmppConnectorConfig.from_settings({**base, "password_env": "SMSC_LONG_PW"})
    assert "123456789" not in str(caught.value)  # the message never shows the secret
    with pytest.raises(ValueError, match="password must be ASCII"):
        SmppConnectorConfig.from_settings({**base, "password": "पासवर्ड"})
    with pytest.raises(ValueError, match="bind_timeout"):
        SmppConnectorConfig.from_settings({**base, "bind_timeout": 0})


class ScriptedSmsc:
    """Answers the bind of connection n with ``answers[n]`` (the last one repeats).

    An answer is "ok", "malformed" (a bind_transceiver_resp whose system_id is too long),
    "nack0" (a generic_nack with status 0: it matches the sequence number but binds nothing) or
    "stall" (the first half of a bind_transceiver_resp header, then silence).
    """

    def __init__(self, *answers: str) -> None:
        self.answers = answers
        self.connections = 0
        self.binds = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = self.answers[min(self.connections, len(self.answers) - 1)]
        self.connections += 1
        conn = Connection(Role.SMSC)
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if not isinstance(event, PduReceived):
                    continue
                pdu = event.pdu
                if isinstance(pdu, p.BindTransceiver):
                    seq = pdu.sequence_number.to_bytes(4, "big")
                    if answer == "ok":
                        self.binds += 1
                        writer.write(conn.send(pdu.response(0, system_id="scripted")))
                    elif answer == "malformed":
                        head = bytes.fromhex("00000024 80000009 00000000")
                        writer.write(head + seq + b"a" * 20)  # no NUL within 16 octets
                    elif answer == "nack0":
                        writer.write(bytes.fromhex("00000010 80000000 00000000") + seq)
                    else:
                        writer.write(bytes.fromhex("00000020 80000009"))
                elif isinstance(pdu, p.EnquireLink):
                    writer.write(conn.send(pdu.response()))
        writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_bind_the_codec_cannot_encode_is_retried_not_fatal(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sim.address is not None
    c = SmppClient(*sim.address, "acme", "123456789", reconnect_min=0.02, reconnect_max=0.05)
    await c.start()
    try:
        # The EncodeError used to end the connection task on the first attempt, silently.
        await until(lambda: c.counters["reconnects"] >= 3)
        assert c._task is not None and not c._task.done()
        assert not c.bound and "EncodeError" in (c.state()["last_error"] or "")
        logged = "".join(capsys.readouterr())
        assert "smpp bind failed unexpectedly" in logged
        assert "connector=smpp" in logged or '"connector": "smpp"' in logged  # console or JSON
        assert "123456789" not in logged  # the traceback names the field, never the value
        c.password = "pw"  # the next attempt can be encoded: the same loop binds
        await until(lambda: c.bound)
        assert sim.stats.binds == 1
    finally:
        await c.stop()


async def test_a_carrier_that_answers_bind_wrongly_is_retried_until_it_behaves() -> None:
    smsc = ScriptedSmsc("malformed", "nack0", "ok")
    port = await smsc.start()
    c = SmppClient("127.0.0.1", port, "a", "b", reconnect_min=0.02, reconnect_max=0.05)
    await c.start()
    try:
        await until(lambda: c.bound)
        # A generic_nack with status 0 is not a bind: it used to leave the client idle on an
        # unbound link for ever.
        assert (smsc.connections, smsc.binds) == (3, 1)
        assert c.counters["binds"] == 1
    finally:
        await c.stop()
        smsc.close()


async def test_a_carrier_that_sends_half_a_pdu_then_nothing_hits_the_bind_timeout() -> None:
    smsc = ScriptedSmsc("stall", "stall", "ok")
    port = await smsc.start()
    c = SmppClient(
        "127.0.0.1", port, "a", "b", bind_timeout=0.2, reconnect_min=0.02, reconnect_max=0.05
    )
    await c.start()
    try:
        await until(lambda: smsc.connections >= 2)
        assert not c.bound and "SmppTimeout" in (c.state()["last_error"] or "")
        await until(lambda: c.bound)
        assert smsc.connections == 3
    finally:
        await c.stop()
        smsc.close()


async def test_a_connector_that_cannot_bind_is_not_ready_and_keeps_trying() -> None:
    smsc = ScriptedSmsc("stall")
    port = await smsc.start()
    config = SmppConnectorConfig.from_settings(
        {"name": "hostile", "host": "127.0.0.1", "port": port, "system_id": "a",
         "password": "b", "bind_timeout": 0.2}
    )  # fmt: skip
    conn = SmppConnector("hostile", config)

    async def sink(_report: Report) -> None:
        pass

    await conn.start(sink)
    try:
        conn.clients[0].reconnect_min = conn.clients[0].reconnect_max = 0.02
        await until(lambda: smsc.connections >= 3)
        assert not conn.ready
        with pytest.raises(ConnectorError) as caught:
            await conn.submit(outbound("+919812345678"))
        assert caught.value.temporary
    finally:
        await conn.stop()
        smsc.close()


async def test_a_submit_the_codec_cannot_encode_fails_for_good(
    connector: tuple[SmppConnector, list[Report]],
) -> None:
    conn, _ = connector
    message = dataclasses.replace(outbound("+919812345678"), sender="9" * 21)  # 20 allowed
    with pytest.raises(ConnectorError, match="source_addr is 21 octets") as caught:
        await conn.submit(message)
    assert not caught.value.temporary and not caught.value.maybe_sent
    assert conn.ready  # the bind is unharmed
