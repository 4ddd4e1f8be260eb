"""Our SMPP client against an SMSC we did not write: the server side of PyPI's ``smpp34``.

smpp34 is a Rust SMPP 3.4 implementation with Python bindings. Its ``Server`` accepts our bind,
hands each submit_sm to the test (which accepts it with an id), and sends a delivery receipt back
through the bound session; our client must pair responses, deliver the receipt to its handler,
keep the link alive with enquire_link and unbind cleanly.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import pytest

from dakghar.connectors.base import Outbound, Report
from dakghar.connectors.smpp import SmppConnector, SmppConnectorConfig
from dakghar.smpp import pdu as p
from dakghar.smpp.client import SmppClient
from dakghar.smpp.dlr import ReceiptStat, format_receipt, parse_receipt

smpp34 = pytest.importorskip("smpp34", reason="PyPI's smpp34 is not installed")
pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_our_client_binds_submits_gets_a_receipt_keeps_alive_and_unbinds() -> None:
    port = free_port()
    server = smpp34.Server("127.0.0.1", port, system_id="SMPP34")
    await server.start()
    received: list[p.DeliverSm | p.DataSm] = []

    async def on_deliver(pdu: p.DeliverSm | p.DataSm) -> int:
        received.append(pdu)
        return 0

    client = SmppClient(
        "127.0.0.1", port, "dakghar", "secret", on_deliver=on_deliver, enquire_link_interval=0.1
    )
    await client.start()
    esme = await asyncio.wait_for(server.next(), 5)
    assert isinstance(esme, smpp34.Esme) and esme.system_id == "dakghar"
    assert await client.wait_bound(5)

    submit = asyncio.create_task(
        client.submit(
            p.SubmitSm(
                source_addr="DKGHAR",
                source_addr_ton=5,
                destination_addr="919812345678",
                dest_addr_ton=1,
                dest_addr_npi=1,
                registered_delivery=1,
                short_message=b"Your order has shipped",
            )
        )
    )
    event = await asyncio.wait_for(server.next(), 5)
    assert isinstance(event, smpp34.SubmitSmEvent)
    assert (event.destination_addr, event.short_message) == (
        "919812345678",
        b"Your order has shipped",
    )
    assert event.registered_delivery == 1
    event.accept("4F2A9C")
    response = await asyncio.wait_for(submit, 5)
    assert isinstance(response, p.SubmitSmResp)
    assert (response.command_status, response.message_id) == (0, "4F2A9C")

    now = datetime.now(UTC)
    text = format_receipt("4F2A9C", ReceiptStat.DELIVRD, now, now)
    ack = await esme.deliver_sm("DKGHAR", text.encode(), source_addr="919812345678", esm_class=0x04)
    assert ack.is_success
    assert len(received) == 1
    receipt = parse_receipt(received[0].short_message)  # type: ignore[union-attr]
    assert receipt is not None and receipt.stat is ReceiptStat.DELIVRD
    assert receipt.matches("4F2A9C")

    await asyncio.sleep(0.35)  # a few enquire_link rounds: smpp34 answers, the link stays up
    assert client.bound and client.counters["reconnects"] == 0

    await client.stop()
    gone = await asyncio.wait_for(server.next(), 5)
    assert isinstance(gone, smpp34.Unbound)
    await server.stop()


async def test_our_connector_reports_a_receipt_from_smpp34() -> None:
    port = free_port()
    server = smpp34.Server("127.0.0.1", port)
    await server.start()
    config = SmppConnectorConfig.from_settings(
        {"name": "smpp34", "host": "127.0.0.1", "port": port, "system_id": "dakghar"}
    )
    connector = SmppConnector("smpp34", config)
    reports: list[Report] = []

    async def sink(report: Report) -> None:
        reports.append(report)

    await connector.start(sink)
    esme = await asyncio.wait_for(server.next(), 5)
    message = Outbound("msg_1", "+919812345678", "DKGHAR", "Hi", "GSM-7", "otp", 300)
    while not connector.ready:
        await asyncio.sleep(0.01)
    submit = asyncio.create_task(connector.submit(message))
    event = await asyncio.wait_for(server.next(), 5)
    assert (event.destination_addr, event.data_coding, event.short_message) == (
        "919812345678",
        0,
        b"Hi",
    )
    event.accept("77")
    accepted = await asyncio.wait_for(submit, 5)
    assert accepted.provider_ids == ["77"]
    now = datetime.now(UTC)
    text = format_receipt("77", ReceiptStat.UNDELIV, now, now, err="011")
    await esme.deliver_sm("DKGHAR", text.encode(), esm_class=0x04)
    assert [(r.provider_id, r.status, r.detail) for r in reports] == [
        ("77", "undelivered", "err:011")
    ]
    await connector.stop()
    await server.stop()
