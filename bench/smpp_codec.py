"""SMPP codec speed: submit_sm and deliver_sm encode+decode round trips per second.

Compares Dakghar's pure-Python codec (dakghar.smpp.codec) with smpplib's codec and with smpp34's
Rust codec, in the same process and run. Each figure is the median of 5 runs; one round trip is
"build the PDU bytes from an object, then parse those bytes back into an object". The PDUs are a
realistic Indian transactional submit_sm (alphanumeric sender, 12-digit MSISDN, 33-octet text,
registered_delivery, the two DLT TLVs) and a delivery-receipt deliver_sm (appendix B text plus
receipted_message_id and message_state TLVs). A last line gives our Connection's inbound rate:
that submit_sm stream, pipelined 1,000 to a 64 KiB chunk, framed and decoded into events.
Run: PYTHONPATH=src python bench/smpp_codec.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from dakghar.smpp import pdu as p
from dakghar.smpp.codec import decode, encode
from dakghar.smpp.connection import Connection, Role, SessionState
from dakghar.smpp.tlv import Tag

RUNS = 5
TEXT = b"Your OTP is 482913. Do not share."
RECEIPT = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2611250110 done date:2611250111 "
    b"stat:DELIVRD err:000 text:Your OTP is 482913"
)
PE_ID, TEMPLATE_ID = b"1201159100000000000", b"1207161234567890123"


def ours_submit() -> None:
    pdu = p.SubmitSm(
        source_addr_ton=5,
        source_addr="DAKGHR",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="919812345678",
        registered_delivery=1,
        short_message=TEXT,
        sequence_number=7,
        tlvs={Tag.dlt_pe_id: PE_ID, Tag.dlt_template_id: TEMPLATE_ID},
    )
    decode(encode(pdu))


def ours_deliver() -> None:
    pdu = p.DeliverSm(
        source_addr="919812345678",
        destination_addr="DAKGHR",
        esm_class=4,
        short_message=RECEIPT,
        sequence_number=7,
        tlvs={Tag.receipted_message_id: "0123456789", Tag.message_state: 2},
    )
    decode(encode(pdu))


def smpplib_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    import smpplib.smpp

    def submit() -> None:
        pdu = smpplib.smpp.make_pdu(
            "submit_sm",
            client=None,
            sequence=7,
            source_addr_ton=5,
            source_addr="DAKGHR",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="919812345678",
            registered_delivery=1,
            short_message=TEXT,
        )
        smpplib.smpp.parse_pdu(pdu.generate(), client=None, sequence=0)

    def deliver() -> None:
        pdu = smpplib.smpp.make_pdu(
            "deliver_sm",
            client=None,
            sequence=7,
            source_addr="919812345678",
            destination_addr="DAKGHR",
            esm_class=4,
            short_message=RECEIPT,
            receipted_message_id="0123456789",
            message_state=2,
        )
        smpplib.smpp.parse_pdu(pdu.generate(), client=None, sequence=0)

    return submit, deliver


def smpp34_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    import smpp34

    def submit() -> None:
        pdu = smpp34.SubmitSm(
            "DAKGHR",
            "919812345678",
            TEXT,
            source_addr_ton=5,
            dest_addr_ton=1,
            dest_addr_npi=1,
            registered_delivery=1,
            sequence_number=7,
            tlvs=[smpp34.Tlv(0x1400, PE_ID), smpp34.Tlv(0x1401, TEMPLATE_ID)],
        )
        smpp34.decode(pdu.encode())

    def deliver() -> None:
        pdu = smpp34.DeliverSm(
            "919812345678",
            "DAKGHR",
            RECEIPT,
            esm_class=4,
            sequence_number=7,
            tlvs=[
                smpp34.Tlv(0x001E, b"0123456789\x00"),
                smpp34.Tlv(0x0427, b"\x02"),
            ],
        )
        smpp34.decode(pdu.encode())

    return submit, deliver


def connection_rate() -> float:
    """Median submit_sm PDUs/s through Connection.receive_data (framing + decode + events)."""
    pdu = p.SubmitSm(
        source_addr="DAKGHR",
        destination_addr="919812345678",
        short_message=TEXT,
        tlvs={Tag.dlt_pe_id: PE_ID, Tag.dlt_template_id: TEMPLATE_ID},
    )
    stream = b"".join(encode(pdu) for _ in range(1000))
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    results = []
    for _ in range(RUNS):
        conn = Connection(Role.SMSC)
        conn.state = SessionState.BOUND_TRX
        start = time.perf_counter()
        for _ in range(20):
            for chunk in chunks:
                conn.receive_data(chunk)
        results.append(20_000 / (time.perf_counter() - start))
    return statistics.median(results)


def rate(fn: Callable[[], None], n: int) -> float:
    """Median round trips per second over RUNS runs of ``n`` calls."""
    fn()
    results = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        results.append(n / (time.perf_counter() - start))
    return statistics.median(results)


def main() -> None:
    contenders: list[tuple[str, Callable[[], None], Callable[[], None], int]] = [
        ("dakghar (pure Python)", ours_submit, ours_deliver, 30_000)
    ]
    try:
        contenders.append(("smpplib 2.x", *smpplib_pair(), 3_000))
    except ImportError:
        print("smpplib not installed: skipped", file=sys.stderr)
    try:
        contenders.append(("smpp34 (Rust)", *smpp34_pair(), 30_000))
    except ImportError:
        print("smpp34 not installed: skipped", file=sys.stderr)

    rows = [(name, rate(s, n), rate(d, n)) for name, s, d, n in contenders]
    print(f"encode+decode round trips/s, median of {RUNS} runs")
    print(f"{'codec':<24}{'submit_sm':>12}{'deliver_sm':>12}{'vs smpplib':>14}")
    base = next((r for r in rows if r[0].startswith("smpplib")), None)
    for name, submit, deliver in rows:
        ratio = f"{submit / base[1]:.1f}x / {deliver / base[2]:.1f}x" if base else "-"
        print(f"{name:<24}{submit:>12,.0f}{deliver:>12,.0f}{ratio:>14}")
    print(f"dakghar Connection.receive_data, pipelined submit_sm: {connection_rate():,.0f} PDUs/s")


if __name__ == "__main__":
    main()
