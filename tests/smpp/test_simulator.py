"""The simulated carrier over real loopback sockets, driven by our own sans-IO ESME Connection."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dakghar.smpp import pdu as p
from dakghar.smpp.cli import build_config, simulator
from dakghar.smpp.concat import Method, concat_info, split_pdu
from dakghar.smpp.connection import Connection, PduReceived, Role, SessionState
from dakghar.smpp.dlr import ReceiptStat, is_receipt, parse_receipt
from dakghar.smpp.pdu import CommandStatus as S
from dakghar.smpp.simulator import (
    Behaviour,
    Simulator,
    SimulatorConfig,
    SubmitRecord,
)
from dakghar.smpp.tlv import Tag

pytestmark = pytest.mark.timeout(30)

FAST = Behaviour(receipt_delay_ms=(5.0, 20.0))
BIND_CLASSES: dict[str, type[p.BindTransmitter | p.BindReceiver | p.BindTransceiver]] = {
    "tx": p.BindTransmitter,
    "rx": p.BindReceiver,
    "trx": p.BindTransceiver,
}


class Esme:
    """A test client: our ESME Connection over an asyncio stream, reading in the background."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = Connection(Role.ESME)
        self.waiting: dict[int, asyncio.Future[p.Pdu]] = {}
        self.deliveries: asyncio.Queue[p.DeliverSm] = asyncio.Queue()
        self.unbinds = 0
        self.eof = asyncio.Event()
        self.ack_status: Callable[[p.DeliverSm], int | None] = lambda pdu: S.ESME_ROK
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, sim: Simulator) -> Esme:
        assert sim.address is not None
        reader, writer = await asyncio.open_connection(*sim.address)
        return cls(reader, writer)

    async def _read(self) -> None:
        while data := await self.reader.read(65536):
            for event in self.conn.receive_data(data):
                if isinstance(event, PduReceived):
                    self._on_pdu(event.pdu)
        self.eof.set()

    def _on_pdu(self, pdu: p.Pdu) -> None:
        if pdu.is_response:
            future = self.waiting.pop(pdu.sequence_number, None)
            if future is not None and not future.done():
                future.set_result(pdu)
        elif isinstance(pdu, p.DeliverSm):
            status = self.ack_status(pdu)
            if status is not None:
                self.writer.write(self.conn.send(pdu.response(status)))
            self.deliveries.put_nowait(pdu)
        elif isinstance(pdu, p.Unbind):
            self.unbinds += 1
            self.writer.write(self.conn.send(pdu.response()))

    def send(self, pdu: p.Pdu) -> asyncio.Future[p.Pdu]:
        """Write ``pdu``; the future gets its response."""
        self.writer.write(self.conn.send(pdu))
        future: asyncio.Future[p.Pdu] = asyncio.get_running_loop().create_future()
        self.waiting[pdu.sequence_number] = future
        return future

    async def request(self, pdu: p.Pdu, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.send(pdu), timeout)

    async def bind(self, mode: str = "trx", system_id: str = "acct", password: str = "pw") -> Any:
        return await self.request(BIND_CLASSES[mode](system_id=system_id, password=password))

    async def delivery(self, timeout: float = 5.0) -> p.DeliverSm:
        return await asyncio.wait_for(self.deliveries.get(), timeout)

    async def close(self) -> None:
        self.writer.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@asynccontextmanager
async def running(**config: Any) -> AsyncIterator[Simulator]:
    """A started simulator; any exception escaping its callbacks fails the test."""
    config.setdefault("default", FAST)
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: escaped.append(context))
    sim = Simulator(SimulatorConfig(port=0, **config))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
        loop.set_exception_handler(None)
    assert not escaped, escaped


@asynccontextmanager
async def client(sim: Simulator, mode: str = "trx", system_id: str = "acct") -> AsyncIterator[Esme]:
    esme = await Esme.connect(sim)
    response = await esme.bind(mode, system_id)
    assert response.command_status == S.ESME_ROK
    try:
        yield esme
    finally:
        await esme.close()


def sms(to: str = "919812345678", text: bytes = b"hello", **fields: Any) -> p.SubmitSm:
    fields.setdefault("registered_delivery", 1)
    return p.SubmitSm(
        source_addr="DAKGHR", dest_addr_ton=1, destination_addr=to, short_message=text, **fields
    )


async def test_transmitter_receiver_and_transceiver_binds_are_all_accepted() -> None:
    async with running() as sim:
        sessions = [await Esme.connect(sim) for _ in BIND_CLASSES]
        for esme, mode in zip(sessions, BIND_CLASSES, strict=True):
            response = await esme.bind(mode)
            assert response.command_status == S.ESME_ROK
            assert response.system_id == "DAKGHAR-SIM"
        assert (sim.stats.binds, sim.stats.bound_sessions) == (3, 3)
        for esme in sessions:
            await esme.close()


async def test_wrong_credentials_are_refused_with_the_matching_status() -> None:
    async with running(system_id="dakghar", password="secret") as sim:
        esme = await Esme.connect(sim)
        assert (await esme.bind(system_id="other", password="secret")).command_status == (
            S.ESME_RINVSYSID
        )
        assert (await esme.bind(system_id="dakghar", password="nope")).command_status == (
            S.ESME_RINVPASWD
        )
        assert (await esme.bind(system_id="dakghar", password="secret")).command_status == 0
        assert sim.stats.binds == 1
        await esme.close()


async def test_enquire_link_is_answered_before_and_after_bind() -> None:
    async with running() as sim:
        esme = await Esme.connect(sim)
        assert isinstance(await esme.request(p.EnquireLink()), p.EnquireLinkResp)
        await esme.bind()
        assert isinstance(await esme.request(p.EnquireLink()), p.EnquireLinkResp)
        await esme.close()


async def test_a_submit_gets_a_hex_id_and_a_receipt_that_names_it() -> None:
    records: list[SubmitRecord] = []
    async with running() as sim, client(sim) as esme:
        sim.on_submit = records.append
        response = await esme.request(sms())
        assert response.command_status == S.ESME_ROK
        int(response.message_id, 16)  # a short hex string, as real SMSCs give
        receipt = await esme.delivery()
        assert is_receipt(receipt) and receipt.esm_class == 0x04
        assert receipt.tlvs[Tag.receipted_message_id] == response.message_id
        assert receipt.tlvs[Tag.message_state] == ReceiptStat.DELIVRD.message_state
        parsed = parse_receipt(receipt.short_message, receipt.tlvs)
        assert parsed is not None and parsed.stat is ReceiptStat.DELIVRD
        assert parsed.matches(response.message_id)
        assert (receipt.source_addr, receipt.destination_addr) == ("919812345678", "DAKGHR")
        [record] = records
        assert (record.message_id, record.system_id) == (response.message_id, "acct")
        assert record.short_message == b"hello"
        await asyncio.sleep(0.05)
        assert sim.stats.receipts_acked == sim.stats.receipts_sent == 1


async def test_ids_are_unique_across_many_pipelined_submits() -> None:
    async with running() as sim, client(sim) as esme:
        futures = [esme.send(sms(f"9198{i:08d}", registered_delivery=0)) for i in range(500)]
        responses = await asyncio.wait_for(asyncio.gather(*futures), 10)
        assert len({r.message_id for r in responses}) == 500  # type: ignore[attr-defined]
        assert sim.stats.accepted == sim.stats.submits == 500


async def test_no_receipt_unless_registered_delivery_asks_and_failure_only_receipts() -> None:
    undeliverable = Behaviour(receipt_delay_ms=(0.0, 5.0), delivery_rate=0.0)
    async with running(rules=(("+9197", undeliverable),)) as sim, client(sim) as esme:
        await esme.request(sms(registered_delivery=0))
        await esme.request(sms(registered_delivery=2))  # failure only: this one is delivered
        failed = await esme.request(sms("919712345678", registered_delivery=2))
        receipt = await esme.delivery()
        assert receipt.tlvs[Tag.receipted_message_id] == failed.message_id
        assert receipt.tlvs[Tag.message_state] == ReceiptStat.UNDELIV.message_state
        await asyncio.sleep(0.1)
        assert esme.deliveries.empty()


async def test_magic_numbers_behave_as_api_md_says() -> None:
    async with running() as sim, client(sim) as esme:
        rejected = await esme.request(sms("+917000000001"))
        assert rejected.command_status == S.ESME_RSUBMITFAIL
        undelivered = await esme.request(sms("917000000002"))
        receipt = await esme.delivery()
        assert receipt.tlvs[Tag.receipted_message_id] == undelivered.message_id
        assert receipt.tlvs[Tag.message_state] == ReceiptStat.UNDELIV.message_state
        assert b"stat:UNDELIV" in receipt.short_message
        statuses = [(await esme.request(sms("917000000003"))).command_status for _ in range(3)]
        assert statuses == [S.ESME_RTHROTTLED, S.ESME_RTHROTTLED, S.ESME_ROK]
        assert (await esme.delivery()).tlvs[Tag.message_state] == ReceiptStat.DELIVRD.message_state
        # Another text to the same number starts its own count.
        other = await esme.request(sms("917000000003", b"another"))
        assert other.command_status == S.ESME_RTHROTTLED
        dnd = await esme.request(sms("917000000004"))
        assert (await esme.delivery()).tlvs[Tag.receipted_message_id] == dnd.message_id
        silent = await esme.request(sms("917000000005"))
        assert silent.command_status == S.ESME_ROK
        await asyncio.sleep(0.1)
        assert esme.deliveries.empty()
        assert (sim.stats.rejected, sim.stats.throttled) == (1, 3)


async def test_magic_numbers_can_be_switched_off() -> None:
    async with running(magic_numbers=False) as sim, client(sim) as esme:
        assert (await esme.request(sms("917000000001"))).command_status == S.ESME_ROK


async def test_throttle_tps_refuses_what_exceeds_the_bucket_and_longest_prefix_wins() -> None:
    rules = (
        ("+91", Behaviour(throttle_tps=5.0)),
        ("+9198", Behaviour(receipt_delay_ms=(5.0, 5.0))),  # longer prefix: unthrottled
    )
    async with running(rules=rules) as sim, client(sim) as esme:
        burst = [esme.send(sms(f"9197{i:08d}", registered_delivery=0)) for i in range(20)]
        statuses = [r.command_status for r in await asyncio.gather(*burst)]
        assert statuses.count(S.ESME_ROK) == 5
        assert statuses.count(S.ESME_RTHROTTLED) == 15
        others = [esme.send(sms(f"9198{i:08d}", registered_delivery=0)) for i in range(20)]
        assert all(r.command_status == 0 for r in await asyncio.gather(*others))
        await asyncio.sleep(0.25)  # a quarter second refills about one token
        assert (await esme.request(sms("919700000000"))).command_status == S.ESME_ROK
        assert sim.stats.throttled == 15


async def statuses_with_seed(seed: int) -> list[int]:
    async with running(default=Behaviour(error_rate=0.3), seed=seed) as sim, client(sim) as esme:
        burst = [esme.send(sms(f"9198{i:08d}", registered_delivery=0)) for i in range(200)]
        statuses = [r.command_status for r in await asyncio.gather(*burst)]
        assert sim.stats.errors == statuses.count(S.ESME_RSYSERR)
        return statuses


async def test_error_rate_is_drawn_from_the_seed_reproducibly() -> None:
    first, again, other = (
        await statuses_with_seed(11),
        await statuses_with_seed(11),
        await statuses_with_seed(12),
    )
    assert first == again != other
    assert 30 <= first.count(S.ESME_RSYSERR) <= 90  # about 30% of 200
    assert set(first) == {S.ESME_ROK, S.ESME_RSYSERR}


async def test_timeout_rate_leaves_the_submit_unanswered() -> None:
    async with running(default=Behaviour(timeout_rate=1.0)) as sim, client(sim) as esme:
        with pytest.raises(TimeoutError):
            await esme.request(sms(), timeout=0.3)
        assert isinstance(await esme.request(p.EnquireLink()), p.EnquireLinkResp)
        assert sim.stats.timeouts == 1


async def test_drop_rate_drops_the_tcp_connection_instead_of_answering() -> None:
    async with running(default=Behaviour(drop_rate=1.0)) as sim:
        esme = await Esme.connect(sim)
        await esme.bind()
        esme.send(sms())
        await asyncio.wait_for(esme.eof.wait(), 5)
        assert sim.stats.drops == 1
        await asyncio.sleep(0.05)
        assert sim.stats.bound_sessions == 0
        await esme.close()


async def test_accept_latency_delays_the_response() -> None:
    slow = Behaviour(accept_latency_ms=(150.0, 200.0), receipt_delay_ms=(0.0, 0.0))
    async with running(default=slow) as sim, client(sim) as esme:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await esme.request(sms())
        assert loop.time() - started >= 0.14
        await esme.delivery()


async def test_receipts_wait_for_a_receiver_bound_after_the_submit() -> None:
    async with running() as sim, client(sim, "tx") as sender:
        ids = [(await sender.request(sms(f"9198{i:08d}"))).message_id for i in range(3)]
        await asyncio.sleep(0.1)  # due by now, but nobody can receive them yet
        assert sim.stats.receipts_sent == 0
        async with client(sim, "rx", system_id="someone-else") as stranger:
            async with client(sim, "rx") as receiver:
                got = [await receiver.delivery() for _ in ids]
                assert sorted(r.tlvs[Tag.receipted_message_id] for r in got) == sorted(ids)
            assert stranger.deliveries.empty()


async def test_a_refused_receipt_is_sent_again_later() -> None:
    async with running(receipt_retry_ms=50.0) as sim, client(sim) as esme:
        answers = iter([S.ESME_RSYSERR, S.ESME_ROK])
        esme.ack_status = lambda pdu: next(answers)
        response = await esme.request(sms())
        first, second = await esme.delivery(), await esme.delivery()
        for receipt in (first, second):
            assert receipt.tlvs[Tag.receipted_message_id] == response.message_id
        assert first.sequence_number != second.sequence_number
        await asyncio.sleep(0.05)
        assert (sim.stats.receipts_sent, sim.stats.receipts_acked) == (2, 1)


async def test_a_garbled_deliver_sm_resp_counts_as_a_refusal() -> None:
    async with running(receipt_retry_ms=30.0) as sim, client(sim) as esme:
        answers = iter([None, S.ESME_ROK])  # None: we answer the first one by hand
        esme.ack_status = lambda pdu: next(answers)
        await esme.request(sms())
        first = await esme.delivery()
        garbled = (
            bytes.fromhex("00000017 80000005 00000000")
            + first.sequence_number.to_bytes(4, "big")
            + b"\x00\x04\x24\x00\x09ab"  # empty message_id, then a TLV claiming 9 octets
        )
        esme.writer.write(garbled)
        second = await esme.delivery()
        assert second.tlvs == first.tlvs
        await asyncio.sleep(0.05)
        assert (sim.stats.receipts_sent, sim.stats.receipts_acked) == (2, 1)


async def test_an_unacknowledged_receipt_times_out_and_is_retried() -> None:
    config = {"receipt_ack_timeout_ms": 200.0, "receipt_retry_ms": 20.0}
    async with running(**config) as sim, client(sim) as esme:
        answers = iter([None, S.ESME_ROK])  # None: never answer the first one
        esme.ack_status = lambda pdu: next(answers)
        await esme.request(sms())
        first = await esme.delivery()
        second = await esme.delivery(timeout=3.0)
        assert first.tlvs == second.tlvs
        await asyncio.sleep(0.05)
        assert (sim.stats.receipts_sent, sim.stats.receipts_acked) == (2, 1)


async def test_receipts_in_flight_on_a_lost_session_go_to_the_next_receiver() -> None:
    async with running() as sim, client(sim, "tx") as sender:
        receiver = await Esme.connect(sim)
        await receiver.bind("rx")
        receiver.ack_status = lambda pdu: None  # reads them but never acknowledges
        response = await sender.request(sms())
        await receiver.delivery()
        await receiver.close()
        async with client(sim, "rx") as second:
            receipt = await second.delivery()
            assert receipt.tlvs[Tag.receipted_message_id] == response.message_id


async def test_long_message_parts_each_get_an_id_and_a_receipt() -> None:
    records: list[SubmitRecord] = []
    async with running() as sim, client(sim) as esme:
        sim.on_submit = records.append
        template = sms(registered_delivery=1)
        parts = split_pdu(template, b"x" * 400, Method.UDH8, ref=7)
        assert len(parts) == 3
        responses = [await esme.request(part) for part in parts]
        ids = [r.message_id for r in responses]
        assert len(set(ids)) == 3
        receipts = {(await esme.delivery()).tlvs[Tag.receipted_message_id] for _ in ids}
        assert receipts == set(ids)
        assert [concat_info(r)[0] for r in records] == [  # type: ignore[arg-type]
            concat_info(part)[0] for part in parts
        ]
        assert all(r.esm_class & 0x40 for r in records)


async def test_data_sm_and_message_payload_are_accepted() -> None:
    records: list[SubmitRecord] = []
    async with running() as sim, client(sim) as esme:
        sim.on_submit = records.append
        data_sm = p.DataSm(
            source_addr="DAKGHR",
            destination_addr="919812345678",
            registered_delivery=1,
            tlvs={Tag.message_payload: b"y" * 300},
        )
        response = await esme.request(data_sm)
        assert isinstance(response, p.DataSmResp) and response.command_status == 0
        receipt = await esme.delivery()
        assert receipt.tlvs[Tag.receipted_message_id] == response.message_id
        assert records[0].short_message == b"y" * 300


async def test_submit_multi_lists_the_refused_destinations() -> None:
    async with running() as sim, client(sim) as esme:
        multi = p.SubmitMulti(
            source_addr="DAKGHR",
            dest_addresses=[
                p.SmeAddress(1, 1, "919812345678"),
                p.SmeAddress(1, 1, "917000000001"),
            ],
            registered_delivery=1,
            short_message=b"hi all",
        )
        response = await esme.request(multi)
        assert response.command_status == 0 and response.message_id
        assert [u.destination_addr for u in response.unsuccess_smes] == ["917000000001"]
        assert response.unsuccess_smes[0].error_status_code == S.ESME_RSUBMITFAIL
        receipt = await esme.delivery()
        assert receipt.tlvs[Tag.receipted_message_id] == response.message_id
        assert sim.stats.accepted == 1


async def test_malformed_bytes_get_generic_nack_and_the_session_goes_on() -> None:
    async with running() as sim, client(sim) as esme:
        junk = bytes.fromhex("00000014 00000777 00000000 0000002a") + b"abcd"
        esme.writer.write(junk)
        nack = asyncio.get_running_loop().create_future()
        esme.waiting[0x2A] = nack
        answer = await asyncio.wait_for(nack, 5)
        assert isinstance(answer, p.GenericNack)
        assert answer.command_status == S.ESME_RINVCMDID
        assert (await esme.request(sms())).command_status == S.ESME_ROK
        assert sim.stats.bound_sessions == 1


async def test_an_impossible_command_length_closes_the_connection() -> None:
    async with running() as sim, client(sim) as esme:
        esme.writer.write(bytes.fromhex("00000004 00000015 00000000 00000001"))
        await asyncio.wait_for(esme.eof.wait(), 5)


async def test_submit_before_bind_is_refused_with_invbndsts() -> None:
    async with running() as sim:
        esme = await Esme.connect(sim)
        assert (await esme.request(p.EnquireLink())).command_status == 0
        esme.conn.state = SessionState.BOUND_TX  # lie to our side to get the PDU out
        assert (await esme.request(sms())).command_status == S.ESME_RINVBNDSTS
        assert sim.stats.submits == 0
        await esme.close()


async def test_unbind_is_answered_and_the_connection_closed() -> None:
    async with running() as sim:
        esme = await Esme.connect(sim)
        await esme.bind()
        assert isinstance(await esme.request(p.Unbind()), p.UnbindResp)
        await asyncio.wait_for(esme.eof.wait(), 5)
        await asyncio.sleep(0.05)
        assert sim.stats.bound_sessions == 0
        await esme.close()


async def test_stop_gives_up_on_a_peer_that_never_answers_unbind_and_sends_no_more() -> None:
    slow = Behaviour(receipt_delay_ms=(500.0, 500.0))
    sim = Simulator(SimulatorConfig(port=0, default=slow))
    await sim.start()
    deaf = await Esme.connect(sim)
    await deaf.bind()
    await deaf.request(sms())
    deaf.conn.state = SessionState.CLOSED  # reads nothing from now on, so answers nothing
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sim.stop()
    assert 1.5 < loop.time() - started < 5.0
    await asyncio.wait_for(deaf.eof.wait(), 5)
    await asyncio.sleep(0.6)  # past the receipt's due time: it was discarded, not sent
    assert sim.stats.receipts_sent == 0 and sim.stats.bound_sessions == 0
    await deaf.close()


async def test_stop_unbinds_every_session_then_closes() -> None:
    sim = Simulator(SimulatorConfig(port=0, default=FAST))
    await sim.start()
    sessions = [await Esme.connect(sim) for _ in range(3)]
    for esme in sessions:
        await esme.bind()
    await sim.stop()
    assert sim.address is None
    for esme in sessions:
        await asyncio.wait_for(esme.eof.wait(), 5)
        assert esme.unbinds == 1
        await esme.close()
    assert sim.stats.bound_sessions == 0


async def test_mo_messages_reach_a_receiver_and_long_ones_come_in_parts() -> None:
    async with running() as sim, client(sim) as esme:
        await sim.send_mo("acct", "+919812345678", "56161", "STOP")
        mo = await esme.delivery()
        assert (mo.source_addr, mo.destination_addr, mo.short_message) == (
            "919812345678",
            "56161",
            b"STOP",
        )
        assert not is_receipt(mo)
        await sim.send_mo("acct", "+919812345678", "56161", "नमस्ते " * 20)
        parts = [await esme.delivery() for _ in range(3)]
        assert [concat_info(part)[0].seq for part in parts] == [1, 2, 3]  # type: ignore[union-attr]
        assert all(part.data_coding == 8 for part in parts)
        await asyncio.sleep(0.05)
        assert sim.stats.mo_sent == 4


async def test_receipts_spread_over_the_receivers_of_one_system_id() -> None:
    async with (
        running() as sim,
        client(sim, "tx") as sender,
        client(sim, "rx") as first,
        client(sim, "rx") as second,
    ):
        for i in range(20):
            await sender.request(sms(f"9198{i:08d}"))
        await asyncio.sleep(0.2)
        counts = first.deliveries.qsize(), second.deliveries.qsize()
        assert sum(counts) == 20 and min(counts) >= 5


async def test_parked_receipts_are_bounded_and_the_oldest_go_first() -> None:
    async with running(max_pending_receipts=2) as sim, client(sim, "tx") as sender:
        ids = []
        for i in range(3):
            ids.append((await sender.request(sms(f"9198{i:08d}"))).message_id)
            await asyncio.sleep(0.04)  # each receipt falls due before the next submit
        assert sim.stats.receipts_dropped == 1
        async with client(sim, "rx") as receiver:
            got = {(await receiver.delivery()).tlvs[Tag.receipted_message_id] for _ in range(2)}
        assert got == set(ids[1:])


async def test_ten_thousand_pipelined_submits_with_receipts_all_come_back() -> None:
    async with running() as sim, client(sim) as esme:
        loop = asyncio.get_running_loop()
        started = loop.time()
        futures = [esme.send(sms(f"9198{i:08d}")) for i in range(10_000)]
        responses = await asyncio.wait_for(asyncio.gather(*futures), 20)
        ids = {r.message_id for r in responses}  # type: ignore[attr-defined]
        receipts = {(await esme.delivery()).tlvs[Tag.receipted_message_id] for _ in ids}
        elapsed = loop.time() - started
        assert receipts == ids and len(ids) == 10_000
        print(f"10,000 submit_sm + receipts in one process: {10_000 / elapsed:,.0f}/s")


def test_behaviour_checks_its_values() -> None:
    assert Behaviour(receipt_delay_ms=[1, 2]).receipt_delay_ms == (1.0, 2.0)  # type: ignore[arg-type]
    for bad, message in [
        ({"error_rate": 0.6, "drop_rate": 0.6}, "must not exceed 1"),
        ({"throttle_tps": 0}, "positive"),
        ({"accept_latency_ms": (5.0,)}, "two numbers"),
        ({"delivery_rate": True}, "between 0 and 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            Behaviour(**bad)


def test_from_settings_reads_defaults_rules_and_refuses_unknown_keys() -> None:
    config = SimulatorConfig.from_settings(
        {
            "port": 0,
            "system_id": "dakghar",
            "seed": 3,
            "receipt_delay_ms": [5, 30],
            "delivery_rate": 0.9,
            "rules": [
                {"prefix": "+9198", "throttle_tps": 50, "carrier": "airtel"},
                {"prefix": "91", "error_rate": 0.5},
            ],
        }
    )
    assert config.default == Behaviour(receipt_delay_ms=(5.0, 30.0), delivery_rate=0.9)
    airtel = config.behaviour_for("+919812345678")
    assert (airtel.carrier, airtel.throttle_tps, airtel.delivery_rate) == ("airtel", 50, 0.9)
    assert config.behaviour_for("+919712345678").error_rate == 0.5
    assert config.behaviour_for("+14155550123") is config.default
    for bad, message in [
        ({"colour": "blue"}, "unknown key"),
        ({"rules": [{"prefix": "+91", "speed": 1}]}, "rules\\[0\\]: unknown key"),
        ({"rules": [{"throttle_tps": 1}]}, "needs a prefix"),
        ({"delivery_rate": 2}, "between 0 and 1"),
        ({"receipt_delay_ms": [9, 1]}, "low <= high"),
        ({"port": "x"}, "port"),
        ({"rules": [{"prefix": "+9x"}]}, "prefix"),
    ]:
        with pytest.raises(ValueError, match=message):
            SimulatorConfig.from_settings(bad)


# --- the `dakghar simulator` command ------------------------------------------------------------

SIMULATOR_COMMAND = "from dakghar.smpp.cli import simulator; simulator()"


def read_pdus(sock: socket.socket, conn: Connection, wanted: int = 1) -> list[p.Pdu]:
    """Blocking read until ``wanted`` PDUs have arrived."""
    pdus: list[p.Pdu] = []
    while len(pdus) < wanted:
        data = sock.recv(65536)
        assert data, "the simulator closed the connection"
        pdus += [e.pdu for e in conn.receive_data(data) if isinstance(e, PduReceived)]
    return pdus


def test_the_command_serves_a_bind_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    settings = tmp_path / "dakghar.toml"
    settings.write_text('[simulator]\nsystem_id = "cli"\nreceipt_delay_ms = [1, 2]\n')
    process = subprocess.Popen(
        [sys.executable, "-c", SIMULATOR_COMMAND, "--port", "0", "--config", str(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
        assert match, first
        banner = "".join(process.stdout.readline() for _ in range(8))
        assert "+917000000003" in banner and "system_id cli" in banner
        conn = Connection(Role.ESME)
        with socket.create_connection(("127.0.0.1", int(match[1])), timeout=5) as sock:
            sock.sendall(conn.send(p.BindTransceiver(system_id="cli", password="any")))
            [bound] = read_pdus(sock, conn)
            assert bound.command_status == S.ESME_ROK
            sock.sendall(conn.send(sms()))
            receipt, response = sorted(read_pdus(sock, conn, 2), key=lambda x: x.is_response)
            assert isinstance(response, p.SubmitSmResp) and isinstance(receipt, p.DeliverSm)
            sock.sendall(conn.send(receipt.response()))
            process.send_signal(signal.SIGTERM)
            [unbind] = read_pdus(sock, conn)
            assert isinstance(unbind, p.Unbind)
            sock.sendall(conn.send(unbind.response()))
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "stopped: 1 binds, 1 submits, 1 accepted, 1 receipts sent (1 acknowledged)" in out
        assert "smpp bound" in err and "hello" not in err  # metadata only, never the text
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_command_names_a_bad_settings_key(tmp_path: Path) -> None:
    settings = tmp_path / "dakghar.toml"
    settings.write_text("[simulator]\ncolour = 'blue'\n")
    result = CliRunner().invoke(simulator, ["--port", "0", "--config", str(settings)])
    assert result.exit_code != 0
    assert "unknown key(s) colour" in result.output


def test_command_options_override_the_settings_file_for_every_rule(tmp_path: Path) -> None:
    settings = tmp_path / "dakghar.toml"
    settings.write_text(
        '[simulator]\nport = 2900\ndelivery_rate = 0.5\n[[simulator.rules]]\nprefix = "+1"\n'
    )
    options: dict[str, Any] = dict.fromkeys(
        ("host", "port", "seed", "system_id", "password", "delivery_rate", "throttle_tps")
    )
    config = build_config(str(settings), **options, receipt_delay_ms="100-300")
    assert config.port == 2900 and config.default.delivery_rate == 0.5
    assert config.default.receipt_delay_ms == config.rules[0][1].receipt_delay_ms == (100, 300)
    options.update(port=0, throttle_tps=20.0)
    config = build_config(str(settings), **options, receipt_delay_ms="50")
    assert config.port == 0 and config.rules[0][1].throttle_tps == 20.0
    assert config.default.receipt_delay_ms == (50, 50)


# --- listener limits --------------------------------------------------------------------------


async def _open(sim: Simulator, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, Any]:
    assert sim.address is not None
    return await asyncio.open_connection(*sim.address, local_addr=(source, 0))


async def _is_closed(reader: asyncio.StreamReader, timeout: float = 2.0) -> bool:
    """True when the server closed (EOF or reset) within ``timeout``; False if it stays open."""
    try:
        return await asyncio.wait_for(reader.read(65536), timeout) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def _bind_from(sim: Simulator, source: str) -> Esme:
    reader, writer = await _open(sim, source)
    esme = Esme(reader, writer)
    assert (await esme.bind()).command_status == S.ESME_ROK
    return esme


async def test_connections_over_the_default_per_ip_cap_are_closed_and_others_still_bind() -> None:
    async with running() as sim:
        cap = sim.config.max_connections_per_ip
        opened = [await _open(sim) for _ in range(cap + 5)]
        closed = await asyncio.gather(*(_is_closed(reader, 0.5) for reader, _ in opened))
        assert sum(closed) == 5 and not any(closed[:cap])
        assert sim.stats.connections_refused == 5
        esme = await _bind_from(sim, "127.0.0.2")  # another address is not held back
        await esme.close()
        for _, writer in opened:
            writer.close()


async def test_connections_over_the_total_cap_are_closed_until_idle_ones_time_out() -> None:
    async with running(
        max_connections=4, max_connections_per_ip=2, unbound_timeout_seconds=0.5
    ) as sim:
        opened = [await _open(sim, f"127.0.0.{n}") for n in (1, 1, 2, 2)]
        late_reader, late_writer = await _open(sim, "127.0.0.3")
        assert await _is_closed(late_reader, 1.0)  # closed at once, well before the timeout
        assert sim.stats.connections_refused == 1
        # The idle ones go at the unbound timeout, and a real client then gets in.
        assert all(await asyncio.gather(*(_is_closed(r, 3.0) for r, _ in opened)))
        assert sim.stats.unbound_timeouts == 4
        esme = await _bind_from(sim, "127.0.0.3")
        await esme.close()
        for _, writer in [*opened, (late_reader, late_writer)]:
            writer.close()


async def test_an_unbound_connection_is_closed_after_the_timeout_but_a_bound_one_is_not() -> None:
    async with running(password="pw", unbound_timeout_seconds=0.3) as sim, client(sim) as bound:
        idle = await Esme.connect(sim)
        refused = await Esme.connect(sim)
        # enquire_link is answered before bind, and a refused bind is answered, but neither
        # counts as binding.
        assert isinstance(await idle.request(p.EnquireLink()), p.EnquireLinkResp)
        assert (await refused.bind(password="wrong")).command_status == S.ESME_RINVPASWD
        await asyncio.wait_for(asyncio.gather(idle.eof.wait(), refused.eof.wait()), 3)
        assert sim.stats.unbound_timeouts == 2
        await asyncio.sleep(0.3)  # the bound session outlives the timeout
        assert isinstance(await bound.request(p.EnquireLink()), p.EnquireLinkResp)
        assert sim.stats.bound_sessions == 1
        await idle.close()
        await refused.close()


async def test_an_oversized_command_length_or_garbage_closes_an_unbound_connection() -> None:
    async with running() as sim:
        for junk in (
            bytes.fromhex("7fffffff 00000009 00000000 00000001"),
            (64 * 1024 + 1).to_bytes(4, "big") + bytes(12),
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            reader, writer = await _open(sim)
            writer.write(junk)
            assert await _is_closed(reader, 3.0), junk
            writer.close()


async def test_a_simulator_with_a_password_refuses_a_wrong_and_an_empty_one() -> None:
    async with running(password="r4nd0m") as sim:
        esme = await Esme.connect(sim)
        for wrong in ("nope", ""):
            response = await esme.bind(password=wrong)
            assert response.command_status == S.ESME_RINVPASWD
        assert (sim.stats.binds, sim.stats.bound_sessions) == (0, 0)
        assert (await esme.bind(password="r4nd0m")).command_status == S.ESME_ROK
        await esme.close()


def test_listener_limits_are_settings_with_checked_values() -> None:
    config = SimulatorConfig.from_settings(
        {"unbound_timeout_seconds": 2.5, "max_connections_per_ip": 3, "max_connections": 9}
    )
    assert (config.unbound_timeout_seconds, config.max_connections_per_ip) == (2.5, 3)
    assert config.max_connections == 9
    defaults = SimulatorConfig()
    assert (defaults.unbound_timeout_seconds, defaults.max_connections_per_ip) == (10.0, 50)
    assert defaults.max_connections == 500
    for bad in (
        {"unbound_timeout_seconds": 0},
        {"max_connections": 0},
        {"max_connections_per_ip": -1},
        {"max_connections_per_ip": 10, "max_connections": 5},
    ):
        with pytest.raises(ValueError):
            SimulatorConfig(**bad)
    with pytest.raises(ValueError, match="max_connections has the wrong type"):
        SimulatorConfig.from_settings({"max_connections": "many"})


def test_both_listeners_read_the_limits_from_the_simulator_table(tmp_path: Path) -> None:
    from dakghar.pipeline.runtime import simulator_config

    table = {"unbound_timeout_seconds": 3, "max_connections_per_ip": 4, "max_connections": 8}
    settings = tmp_path / "dakghar.toml"
    settings.write_text("[simulator]\n" + "".join(f"{k} = {v}\n" for k, v in table.items()))
    options: dict[str, Any] = dict.fromkeys(
        ("host", "port", "seed", "system_id", "password", "delivery_rate", "throttle_tps")
    )
    standalone = build_config(str(settings), **options, receipt_delay_ms=None)  # the command
    _, in_process = simulator_config(dict(table))  # dakghar serve
    for config in (standalone, in_process):
        assert config.unbound_timeout_seconds == 3
        assert (config.max_connections_per_ip, config.max_connections) == (4, 8)
