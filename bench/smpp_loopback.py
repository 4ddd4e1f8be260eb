"""SMPP over loopback: our asyncio client -> our simulated carrier, windowed, receipts flowing back.

The simulator runs as its own process (`dakghar simulator`), so client and SMSC each get a core,
as they would on two machines. The client keeps --window submit_sm outstanding on each of --binds
transceiver binds, asks for a receipt on every message, and acknowledges each receipt as it
arrives. Prints submit_sm/s (responses received), receipts/s and submit latency p50/p99.
Target (issue 3): >= 10,000 PDUs/s on 2 cores.

    python bench/smpp_loopback.py [--count 100000] [--window 200] [--binds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from _harness import BIN, free_port, percentile
from dakghar.smpp import pdu as p
from dakghar.smpp.client import SmppClient


async def run(port: int, count: int, window: int, binds: int) -> dict[str, float]:
    receipts = 0
    done = asyncio.Event()
    last_receipt = 0.0

    async def on_deliver(pdu: p.DeliverSm | p.DataSm) -> int:
        nonlocal receipts, last_receipt
        receipts += 1
        if receipts >= count:
            last_receipt = time.perf_counter()
            done.set()
        return 0

    clients = [
        SmppClient("127.0.0.1", port, "bench", "bench", window=window, on_deliver=on_deliver)
        for _ in range(binds)
    ]
    for c in clients:
        await c.start()
        assert await c.wait_bound(10), c.state()
    latencies: list[float] = []
    remaining = iter(range(count))
    errors = 0

    async def worker(c: SmppClient) -> None:
        nonlocal errors
        for i in remaining:
            pdu = p.SubmitSm(
                source_addr="DKGHAR",
                source_addr_ton=5,
                destination_addr=f"9198{i % 10**8:08d}",
                dest_addr_ton=1,
                dest_addr_npi=1,
                registered_delivery=1,
                short_message=b"Your order has shipped",
            )
            t0 = time.perf_counter()
            resp = await c.submit(pdu)
            latencies.append(time.perf_counter() - t0)
            errors += resp.command_status != 0

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients for _ in range(window)))
    submitted = time.perf_counter()
    await asyncio.wait_for(done.wait(), 120)
    for c in clients:
        await c.stop()
    latencies.sort()
    return {
        "submit_per_s": count / (submitted - start),
        "receipts_per_s": count / (last_receipt - start),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--binds", type=int, default=1)
    args = ap.parse_args()
    port = free_port()
    sim = subprocess.Popen(
        [str(BIN), "simulator", "--port", str(port), "--receipt-delay-ms", "0-50",
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        r = asyncio.run(run(port, args.count, args.window, args.binds))
    finally:
        sim.terminate()
        sim.wait(10)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
          "client and simulator in separate processes on loopback")  # fmt: skip
    print(
        f"{args.count:,} submit_sm, window {args.window} x {args.binds} bind(s): "
        f"{r['submit_per_s']:,.0f} submit_sm/s, {r['receipts_per_s']:,.0f} receipts/s end to end, "
        f"submit p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms, errors {int(r['errors'])} "
        "(target >= 10,000 PDUs/s)"
    )


if __name__ == "__main__":
    main()
