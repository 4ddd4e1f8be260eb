"""End-to-end benchmark: API accept -> SMPP submit_sm at the simulated carrier -> delivered.

Starts a real `dakghar serve` (one process: API, dispatcher, SMPP connector and the built-in
simulated carrier, which answers over a real SMPP session on loopback) with a sandbox key, then:

1. saturation: posts --count messages in batches as fast as the API takes them and measures how
   fast they come out the other end (delivered per second, first accept to last delivery);
2. steady load: offers --rate messages/s for --seconds and reports p50/p99 of accept -> submit_sm
   accepted (``submitted_at``) and accept -> delivered, read from the gateway's own timestamps.

The simulated carrier's receipt delay is set to 1-10 ms so that the gateway, not the simulated
network, is what is measured. Target (issue 4): >= 2,000 msg/s sustained on 2 cores, one process.

    python bench/pipeline.py [--count 30000] [--rate 2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from _harness import Conn, Gateway, drive, gateway, percentile, post_head

CONFIG = """
[simulator]
receipt_delay_ms = [1, 10]
"""


def batches(n: int, size: int, offset: int) -> list[bytes]:
    out = []
    for start in range(0, n, size):
        to = [f"+9198{(offset + start + i) % 10**8:08d}" for i in range(min(size, n - start))]
        out.append(json.dumps({"to": to, "body": "Your order has shipped"}).encode())
    return out


def wait_final(gw: Gateway, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        done = gw.query("SELECT count(*) FROM messages WHERE status = 'delivered'")[0][0]
        assert isinstance(done, int)
        if done >= total:
            return
        if done != last:
            last = done
        time.sleep(0.25)
    print(f"  (timed out: {last} of {total} delivered)", file=sys.stderr)


async def offer(port: int, key: str, rate: int, seconds: float, offset: int) -> int:
    """Send ``rate`` messages/s as batches of rate/20 every 50 ms."""
    head = post_head("/v1/messages/batch", key)
    conn = await Conn.open(port)
    per_tick = max(1, rate // 20)
    sent = 0
    t0 = time.perf_counter()
    tick = 0
    while time.perf_counter() - t0 < seconds:
        body = batches(per_tick, per_tick, offset + sent)[0]
        status = await conn.post(head, body)
        if status == 202:
            sent += per_tick
        tick += 1
        delay = t0 + tick * 0.05 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    conn.close()
    return sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=30_000, help="messages in the saturation run")
    ap.add_argument("--rate", type=int, default=2_000, help="offered msg/s in the steady run")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()

    with gateway(mode="--sandbox", config=CONFIG) as gw:
        # warm up connections and the SMPP bind
        asyncio.run(drive(gw.port, gw.key, "/v1/messages/batch", batches(200, 100, 0), 1))
        wait_final(gw, 200, 30)

        start = int(time.time() * 1000)
        asyncio.run(drive(gw.port, gw.key, "/v1/messages/batch", batches(args.count, 500, 1), 2))
        wait_final(gw, 200 + args.count, 300)
        rows = gw.query(
            "SELECT min(created_at), max(delivered_at), count(*) FROM messages "
            "WHERE status = 'delivered' AND created_at >= ?",
            start,
        )
        first, last, n = rows[0]
        assert isinstance(first, int) and isinstance(last, int) and isinstance(n, int)
        saturated = n / ((last - first) / 1000)

        mark = int(time.time() * 1000)
        offered = asyncio.run(offer(gw.port, gw.key, args.rate, args.seconds, 10**6))
        wait_final(gw, 200 + args.count + offered, 120)
        lat = gw.query(
            "SELECT submitted_at - created_at, delivered_at - created_at FROM messages "
            "WHERE created_at >= ? AND status = 'delivered'",
            mark,
        )
    to_submit = sorted(float(r[0]) for r in lat if isinstance(r[0], int))
    to_delivered = sorted(float(r[1]) for r in lat if isinstance(r[1], int))
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; gateway, "
          "simulated carrier and load generator share the box")  # fmt: skip
    print(f"saturation: {n:,} messages accepted in batches -> delivered at {saturated:,.0f} msg/s "
          "end to end (target >= 2,000)")  # fmt: skip
    print(
        f"steady {args.rate:,} msg/s offered for {args.seconds:.0f} s ({len(lat):,} delivered): "
        f"accept->submit p50 {percentile(to_submit, 0.5):.0f} ms p99 "
        f"{percentile(to_submit, 0.99):.0f} ms; accept->delivered p50 "
        f"{percentile(to_delivered, 0.5):.0f} ms p99 {percentile(to_delivered, 0.99):.0f} ms"
    )


if __name__ == "__main__":
    main()
