"""Interop: smpplib, an SMPP client we did not write, binds to the simulated carrier.

smpplib's blocking client runs in a worker thread while the simulator serves on the test's event
loop. It sends a short and a UDH-split long message (smpplib's own ``gsm.make_parts``) as a
transceiver and must get back, through its own handlers, one receipt per part whose id matches
the submit_sm_resp it was given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm

from dakghar.smpp.simulator import Behaviour, Simulator, SimulatorConfig, SubmitRecord

pytestmark = [pytest.mark.interop, pytest.mark.timeout(30)]

LONG_TEXT = "Dakghar interop with smpplib: this message is long enough to need three parts. " * 4


@dataclass
class Seen:
    """What smpplib's handlers saw: submit_sm_resp ids, and receipts (id, text, status)."""

    submitted: list[str] = field(default_factory=list)
    receipts: list[tuple[str, str]] = field(default_factory=list)
    parts_sent: int = 0


def run_smpplib(port: int, system_id: str, password: str) -> Seen:
    """Bind as a transceiver, send both messages, read until every part has its receipt."""
    seen = Seen()
    client = smpplib.client.Client("127.0.0.1", port, timeout=2, allow_unknown_opt_params=True)

    def sent(pdu: Any, **_: Any) -> None:
        seen.submitted.append(pdu.message_id.decode())

    def received(pdu: Any, **_: Any) -> int:
        receipted = pdu.receipted_message_id
        text = pdu.short_message.decode()
        seen.receipts.append((receipted.decode() if receipted else "", text))
        return int(smpplib.consts.SMPP_ESME_ROK)

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(received)
    client.connect()
    try:
        client.bind_transceiver(system_id=system_id, password=password)
        for text in ("hello from smpplib", LONG_TEXT):
            parts, coding, esm_class = smpplib.gsm.make_parts(text)
            for part in parts:
                client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                    source_addr="DAKGHR",
                    dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    destination_addr="919812345678",
                    short_message=part,
                    data_coding=coding,
                    esm_class=esm_class,
                    registered_delivery=True,
                )
                seen.parts_sent += 1
        for _ in range(200):
            if len(seen.receipts) >= seen.parts_sent and len(seen.submitted) >= seen.parts_sent:
                break
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return seen


async def test_smpplib_transceiver_gets_a_receipt_for_every_part_it_submitted() -> None:
    records: list[SubmitRecord] = []
    sim = Simulator(
        SimulatorConfig(
            port=0,
            system_id="smpplib",
            password="secret",
            default=Behaviour(receipt_delay_ms=(10.0, 50.0)),
        )
    )
    sim.on_submit = records.append
    _, port = await sim.start()
    try:
        seen = await asyncio.to_thread(run_smpplib, port, "smpplib", "secret")
    finally:
        await sim.stop()
    assert seen.parts_sent == 1 + 3
    assert len(set(seen.submitted)) == 4
    assert sorted(r[0] for r in seen.receipts) == sorted(seen.submitted)
    for message_id, text in seen.receipts:
        assert text.startswith(f"id:{message_id} ") and "stat:DELIVRD" in text
    # The long message's parts arrived as smpplib split them: UDHI set, one concat reference.
    long_parts = [r for r in records if r.esm_class & 0x40]
    assert len(long_parts) == 3
    assert len({r.short_message[:5] for r in long_parts}) == 1  # same UDH header up to seq
    assert [r.short_message[5] for r in long_parts] == [1, 2, 3]
    assert sim.stats.receipts_acked == 4


async def test_smpplib_with_a_wrong_password_is_refused() -> None:
    sim = Simulator(SimulatorConfig(port=0, system_id="smpplib", password="secret"))
    _, port = await sim.start()
    try:
        status = await asyncio.to_thread(bind_status, port, "wrong")
    finally:
        await sim.stop()
    assert status == smpplib.consts.SMPP_ESME_RINVPASWD


def bind_status(port: int, password: str) -> int:
    """The command_status smpplib reports for a refused bind."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=2, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transceiver(system_id="smpplib", password=password)
    except smpplib.exceptions.PDUError as refused:
        return int(refused.args[1])
    finally:
        client.disconnect()
    return 0
