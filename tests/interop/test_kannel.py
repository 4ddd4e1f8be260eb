"""Kannel, a widely deployed open-source SMS gateway, talks SMPP to our simulated carrier.

Kannel's bearerbox binds to ``dakghar.smpp.simulator`` as a transceiver; we submit through
Kannel's sendsms HTTP interface and check what the simulator received (number, text, data_coding,
UDH parts), and that the simulator's delivery receipts travel back through Kannel to a dlr-url
served by this test. Skipped, with the reason, when Kannel is not installed (.ci/install-peers
installs it in CI). One simulator, one Kannel and one receipt receiver serve the whole module;
each test uses its own destination number so their traffic never mixes.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dakghar.smpp import pdu as p
from dakghar.smpp.coding import decode_text
from dakghar.smpp.concat import UDHI, concat_info
from dakghar.smpp.simulator import MAGIC_UNDELIVERED, Simulator, SimulatorConfig, SubmitRecord
from tests.interop.kannel import Kannel, SmscLink, find_box

if find_box("bearerbox") is None or find_box("smsbox") is None:
    pytest.skip(
        "Kannel (bearerbox, smsbox) is not installed; run .ci/install-peers to install it",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

SYSTEM_ID = "kannel"
PASSWORD = "s3cret"
WAIT = 15.0  # seconds for one hop through Kannel; real runs take well under one
DELIVERED_TO = "+919812345678"
UNDELIVERED_TO = MAGIC_UNDELIVERED  # the simulator answers it with an UNDELIV receipt
LONG_TO = "+919812345679"
HINDI_TO = "+919812345680"

T = TypeVar("T")


class Inbox:
    """Items appended from other threads (the simulator's loop, the HTTP server), waited on."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = threading.Condition()

    def put(self, item: object) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait(self, select: Callable[[list[Any]], T | None], timeout: float) -> T | None:
        """The first non-None ``select(items)`` within ``timeout`` seconds, else None."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := select(list(self.items))) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return found


class Carrier:
    """The simulator in an event loop of its own thread, so blocking calls cannot stall it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.sim = Simulator(SimulatorConfig(port=0, system_id=SYSTEM_ID, password=PASSWORD))
        self.submits = Inbox()
        self.sim.on_submit = self.submits.put

    def run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=10)

    def start(self) -> tuple[str, int]:
        self.thread.start()
        host, port = self.run(self.sim.start())
        return str(host), int(port)

    def stop(self) -> None:
        try:
            self.run(self.sim.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


class ReceiptHandler(BaseHTTPRequestHandler):
    """Kannel's dlr-url callback: records each query string in the server's inbox."""

    server: ReceiptServer

    def do_GET(self) -> None:
        query = urllib.parse.urlsplit(self.path).query
        self.server.inbox.put(dict(urllib.parse.parse_qsl(query)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the receipts are asserted on, not printed."""


class ReceiptServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiptHandler)
        self.inbox = Inbox()

    def url(self, tag: str) -> str:
        """A dlr-url for Kannel: %d is the report type, %A the SMSC's receipt, %F its message id."""
        return f"http://127.0.0.1:{self.server_address[1]}/dlr?tag={tag}&type=%d&reply=%A&id=%F"


@pytest.fixture(scope="module")
def carrier() -> Iterator[Carrier]:
    carrier = Carrier()
    yield carrier
    carrier.stop()


@pytest.fixture(scope="module")
def receipts() -> Iterator[ReceiptServer]:
    server = ReceiptServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def kannel(carrier: Carrier, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    host, port = carrier.start()
    workdir: Path = tmp_path_factory.mktemp("kannel")
    with Kannel(SmscLink(host, port, SYSTEM_ID, PASSWORD), workdir) as gateway:
        yield gateway


def arrival(inbox: Inbox, select: Callable[[list[Any]], T | None], what: str, kannel: Kannel) -> T:
    """What ``select`` picks from ``inbox`` in time, or a failure with Kannel's log tails."""
    __tracebackhide__ = True
    found = inbox.wait(select, WAIT)
    if found is None:
        pytest.fail(f"no {what} within {WAIT:.0f} s\n{kannel.log_tail()}")
    return found


def receipt_for(receipts: ReceiptServer, tag: str, kannel: Kannel) -> dict[str, str]:
    """The dlr-url call Kannel made for the message tagged ``tag``."""

    def tagged(calls: list[dict[str, str]]) -> dict[str, str] | None:
        return next((call for call in calls if call.get("tag") == tag), None)

    return arrival(receipts.inbox, tagged, f"dlr-url call for {tag!r}", kannel)


def parts_to(carrier: Carrier, number: str, kannel: Kannel, count: int = 1) -> list[SubmitRecord]:
    """The parts the simulator accepted for ``number``, once at least ``count`` have arrived."""
    digits = number.removeprefix("+")  # Kannel sends +91... as 91... with TON international

    def addressed(records: list[SubmitRecord]) -> list[SubmitRecord] | None:
        parts = [r for r in records if r.destination_addr.removeprefix("+") == digits]
        return parts if len(parts) >= count else None

    return arrival(carrier.submits, addressed, f"{count} submit_sm to {number}", kannel)


def as_submit_sm(record: SubmitRecord) -> p.SubmitSm:
    """The record as the PDU it came from, for the codec's concatenation helpers."""
    return p.SubmitSm(
        source_addr=record.source_addr,
        destination_addr=record.destination_addr,
        esm_class=record.esm_class,
        data_coding=record.data_coding,
        short_message=record.short_message,
        tlvs=dict(record.tlvs),
    )


def test_kannel_binds_to_the_simulator_over_one_session(carrier: Carrier, kannel: Kannel) -> None:
    stats = carrier.sim.stats
    assert stats.binds >= 1
    # transceiver-mode: one session carries submits out and receipts back (the tests below).
    assert stats.bound_sessions == 1
    link = next(line for line in kannel.status().splitlines() if "SMPP:" in line)
    assert "(online" in link, link


def test_submit_reaches_the_simulator_and_its_receipt_reaches_the_dlr_url(
    carrier: Carrier, kannel: Kannel, receipts: ReceiptServer
) -> None:
    text = "Your Dakghar code is 424242"
    answer = kannel.sendsms(
        DELIVERED_TO, text, **{"dlr-mask": 3, "dlr-url": receipts.url("delivered")}
    )
    assert answer.startswith("0:"), answer

    (record,) = parts_to(carrier, DELIVERED_TO, kannel)
    assert record.system_id == SYSTEM_ID
    assert record.registered_delivery & 0x01
    assert decode_text(record.short_message, record.data_coding) == text

    report = receipt_for(receipts, "delivered", kannel)
    assert report["type"] == "1", report  # Kannel's DLR type 1: delivered to the phone
    assert "stat:DELIVRD" in report["reply"]
    assert f"id:{record.message_id}" in report["reply"]
    # msg-id-type 0x03: Kannel read both ids as hex (it reports them in decimal), so they matched.
    assert report["id"] == str(int(record.message_id, 16))
    assert carrier.sim.stats.receipts_sent >= 1


def test_undeliverable_number_comes_back_as_dlr_type_2(
    carrier: Carrier, kannel: Kannel, receipts: ReceiptServer
) -> None:
    kannel.sendsms(
        UNDELIVERED_TO, "Never arrives", **{"dlr-mask": 3, "dlr-url": receipts.url("undeliv")}
    )
    (record,) = parts_to(carrier, UNDELIVERED_TO, kannel)

    report = receipt_for(receipts, "undeliv", kannel)
    assert report["type"] == "2", report  # Kannel's DLR type 2: not delivered to the phone
    assert "stat:UNDELIV" in report["reply"]
    assert f"id:{record.message_id}" in report["reply"]


def test_long_message_arrives_as_udh_parts_that_reassemble(
    carrier: Carrier, kannel: Kannel
) -> None:
    text = " ".join(f"word{i:03d}" for i in range(38))[:300]
    kannel.sendsms(LONG_TO, text)

    first = parts_to(carrier, LONG_TO, kannel)[0]
    info, _ = concat_info(as_submit_sm(first))
    assert info is not None, f"a whole message (esm_class {first.esm_class:#04x}), not a part"
    assert info.total >= 2
    pieces: dict[int, bytes] = {}
    for part in parts_to(carrier, LONG_TO, kannel, count=info.total):
        assert part.esm_class & UDHI, "Kannel splits with a user data header"
        part_info, data = concat_info(as_submit_sm(part))
        assert part_info is not None and (part_info.ref, part_info.total) == (info.ref, info.total)
        pieces[part_info.seq] = data
    assert sorted(pieces) == list(range(1, info.total + 1))
    body = b"".join(pieces[seq] for seq in sorted(pieces))
    assert decode_text(body, first.data_coding) == text


def test_hindi_text_arrives_as_ucs2(carrier: Carrier, kannel: Kannel) -> None:
    text = "नमस्ते, डाकघर से परीक्षण संदेश"
    kannel.sendsms(HINDI_TO, text, coding=2, charset="utf-8")

    (record,) = parts_to(carrier, HINDI_TO, kannel)
    assert record.data_coding == 8
    assert decode_text(record.short_message, 8) == text
