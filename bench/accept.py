"""Accept-path benchmark: POST /v1/messages (and /batch) against a real `dakghar serve`.

Starts the gateway as a subprocess on loopback with a fresh SQLite database, then drives it with a
small raw-asyncio HTTP/1.1 keep-alive client (so the client costs as little CPU as possible on a
shared 2-core box). Prints messages/s, p50/p99 latency and the gateway's CPU time per request
(user + system, read from /proc; steadier than the rates on a VM whose neighbours vary), medians
over runs.

    python bench/accept.py [--requests 20000] [--concurrency 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys

from _harness import drive, gateway


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--batches", type=int, default=100, help="batch requests of 1,000 per run")
    ap.add_argument("--batch-concurrency", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    # --no-delivery: measure the accept path alone (no dispatcher competing for the CPU).
    with gateway(mode="--live", serve_args=("--no-delivery",)) as gw:
        port, key = gw.port, gw.key
        single = [
            json.dumps(
                {"to": f"+9198{i % 10**8:08d}", "body": f"Your order {i} has shipped"}
            ).encode()
            for i in range(args.requests)
        ]
        batch = [
            json.dumps({"to": [f"+9170{(b * 1000 + i) % 10**8:08d}" for i in range(1000)],
                        "body": "Flash sale: 20% off today only"}).encode()
            for b in range(args.batches)
        ]  # fmt: skip
        asyncio.run(drive(port, key, "/v1/messages", single[:500], args.concurrency))  # warm-up
        singles, batches = [], []
        for _ in range(args.runs):
            for rows, path, bodies, conc in (
                (singles, "/v1/messages", single, args.concurrency),
                (batches, "/v1/messages/batch", batch, args.batch_concurrency),
            ):
                cpu = gw.cpu_seconds()
                res = asyncio.run(drive(port, key, path, bodies, conc))
                res["cpu_us"] = (gw.cpu_seconds() - cpu) * 1e6 / len(bodies)
                rows.append(res)

    def med(rows: list[dict[str, float]], k: str) -> float:
        return statistics.median(r[k] for r in rows)

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
          "server and client share the box")  # fmt: skip
    for label, rows, scale, conc in (
        ("single  POST /v1/messages      ", singles, 1, args.concurrency),
        ("batch   POST /v1/messages/batch", batches, 1000, args.batch_concurrency),
    ):
        rate = med(rows, "requests_per_s") * scale
        print(
            f"{label} c={conc:<3} {rate:>9,.0f} msg/s  p50 {med(rows, 'p50_ms'):6.1f} ms  "
            f"p99 {med(rows, 'p99_ms'):6.1f} ms per request  "
            f"server CPU {med(rows, 'cpu_us') / scale:5.0f} us/msg  "
            f"errors {int(med(rows, 'errors'))}"
        )
    print(f"(medians of {args.runs} runs)")


if __name__ == "__main__":
    main()
