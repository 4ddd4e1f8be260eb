"""A fast external SMPP 3.4 SMSC for bench/vs_kannel.py: the "carrier" neither gateway wrote.

Accepts any bind, answers submit_sm (after --resp-delay s) with a message id, sends a delivery
receipt deliver_sm --receipt-delay s after each submit_sm_resp on the same bind, answers
enquire_link and unbind. Every 0.25 s and on SIGTERM/SIGINT it writes its counters (submits,
first_submit, last_submit in wall-clock seconds, receipts, receipts_acked, binds) as JSON to
--stats.

    python bench/_smpp_sink.py --port N [--receipt-delay 1.0] [--resp-delay 0] [--stats F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

from dakghar.smpp import decode, encode
from dakghar.smpp import pdu as p

STATS: dict[str, float] = {
    "submits": 0,
    "first_submit": 0.0,
    "last_submit": 0.0,
    "receipts": 0,
    "receipts_acked": 0,
    "binds": 0,
}
_ids = iter(range(1, 1 << 62))


def write_stats(path: Path | None) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(STATS))
    os.replace(tmp, path)


def receipt(message_id: str, pdu: p.SubmitSm, seq: int) -> p.DeliverSm:
    now = datetime.now(UTC)
    text = (
        f"id:{message_id} sub:001 dlvrd:001 submit date:{now:%y%m%d%H%M} "
        f"done date:{now:%y%m%d%H%M} stat:DELIVRD err:000 text:"
    )
    return p.DeliverSm(
        sequence_number=seq,
        source_addr=pdu.destination_addr,
        source_addr_ton=pdu.dest_addr_ton,
        source_addr_npi=pdu.dest_addr_npi,
        destination_addr=pdu.source_addr,
        dest_addr_ton=pdu.source_addr_ton,
        dest_addr_npi=pdu.source_addr_npi,
        esm_class=0x04,
        short_message=text.encode(),
        tlvs={0x001E: message_id, 0x0427: 2},
    )


async def session(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    resp_delay: float,
    receipt_delay: float,
) -> None:
    loop = asyncio.get_running_loop()
    seq = iter(range(1, 0x7FFFFFFF))
    tasks: set[asyncio.Handle] = set()

    def send(pdu: p.Pdu) -> None:
        if not writer.is_closing():
            writer.write(encode(pdu))

    def send_receipt(message_id: str, pdu: p.SubmitSm) -> None:
        STATS["receipts"] += 1
        send(receipt(message_id, pdu, next(seq)))

    def answer_submit(pdu: p.SubmitSm) -> None:
        message_id = f"{next(_ids):x}"
        send(p.SubmitSmResp(sequence_number=pdu.sequence_number, message_id=message_id))
        if pdu.registered_delivery & 0x03:
            loop.call_later(receipt_delay, send_receipt, message_id, pdu)

    try:
        while True:
            head = await reader.readexactly(4)
            (length,) = struct.unpack(">I", head)
            if length < 16 or length > 65536:
                break
            data = head + await reader.readexactly(length - 4)
            try:
                pdu = decode(data)
            except Exception:  # a carrier nacks what it cannot read
                (_cid, _status, sq) = struct.unpack(">III", data[4:16])
                send(p.GenericNack(sequence_number=sq, command_status=0x00000003))
                continue
            if isinstance(pdu, p.SubmitSm):
                now = time.time()
                STATS["submits"] += 1
                if not STATS["first_submit"]:
                    STATS["first_submit"] = now
                STATS["last_submit"] = now
                if resp_delay > 0:
                    loop.call_later(resp_delay, answer_submit, pdu)
                else:
                    answer_submit(pdu)
            elif isinstance(pdu, p.BindTransceiver | p.BindTransmitter | p.BindReceiver):
                STATS["binds"] += 1
                send(pdu.response(system_id="SINK"))
            elif isinstance(pdu, p.DeliverSmResp):
                STATS["receipts_acked"] += 1
            elif isinstance(pdu, p.EnquireLink):
                send(pdu.response())
            elif isinstance(pdu, p.Unbind):
                send(pdu.response())
                await writer.drain()
                break
            elif not pdu.is_response:
                send(pdu.response(status=0x00000003))
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        del tasks
        writer.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--receipt-delay", type=float, default=1.0)
    ap.add_argument("--resp-delay", type=float, default=0.0)
    ap.add_argument("--stats", type=Path, default=None)
    args = ap.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(
        lambda r, w: session(r, w, args.resp_delay, args.receipt_delay), "127.0.0.1", args.port
    )
    print(f"sink listening on 127.0.0.1:{args.port}", flush=True)
    deadline = time.monotonic() + 3600  # never outlive a forgotten bench by more than an hour
    while not stop.is_set() and time.monotonic() < deadline:
        write_stats(args.stats)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
    server.close()
    write_stats(args.stats)


if __name__ == "__main__":
    asyncio.run(main())
