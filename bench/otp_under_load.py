"""OTP latency while a large promotional backlog drains through the same connector.

Starts a real `dakghar serve` with a sandbox key (the built-in simulated carrier over SMPP on
loopback), queues --backlog promotional messages through the batch API, and while they drain
sends one OTP every --interval seconds. Prints p50/p99/max of OTP accept -> submit_sm accepted,
read from the gateway's own timestamps, and how far the backlog had drained meanwhile.
Target (issue 4): p99 < 200 ms with a 100,000-message backlog.

    python bench/otp_under_load.py [--backlog 100000] [--otps 100] [--interval 0.1]
    python bench/otp_under_load.py --postgresql postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time

from _harness import Conn, drive, gateway, percentile, post_head, postgres_database

CONFIG = """
[simulator]
receipt_delay_ms = [1, 10]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backlog", type=int, default=100_000)
    ap.add_argument("--otps", type=int, default=100)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--postgresql", metavar="SERVER_URL",
                    help="a fresh database on this PostgreSQL server, not SQLite")  # fmt: skip
    args = ap.parse_args()

    promos = [
        json.dumps(
            {
                "to": [f"+9198{(b + i) % 10**8:08d}" for i in range(1000)],
                "body": "Flash sale: 20% off today only",
                "type": "promotional",
            }
        ).encode()
        for b in range(0, args.backlog, 1000)
    ]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database(args.postgresql)) if args.postgresql else None
        gw = stack.enter_context(gateway(mode="--sandbox", config=CONFIG, database_url=url))
        asyncio.run(drive(gw.port, gw.key, "/v1/messages/batch", promos, 2))
        queued_at_start = gw.query("SELECT count(*) FROM messages WHERE status = 'queued'")[0][0]

        posted: list[float] = []  # the API's answer to each OTP's POST, ms

        async def otps() -> list[str]:
            conn = await Conn.open(gw.port)
            head = post_head("/v1/messages", gw.key)
            sent = []
            for i in range(args.otps):
                body = {"to": f"+9197{i:08d}", "body": f"Your code is {i:06d}", "type": "otp"}
                t0 = time.perf_counter()
                status = await conn.post(head, json.dumps(body).encode())
                posted.append((time.perf_counter() - t0) * 1000)
                sent.append(str(status))
                await asyncio.sleep(args.interval)
            conn.close()
            return sent

        statuses = asyncio.run(otps())
        time.sleep(1.0)
        rows = gw.query(
            "SELECT submitted_at - created_at FROM messages WHERE type = 'otp' "
            "AND submitted_at IS NOT NULL"
        )
        # Where the time went: accept -> first claim (``claimed_at``) -> carrier's answer.
        split = gw.query(
            "SELECT claimed_at - created_at, submitted_at - claimed_at FROM messages "
            "WHERE type = 'otp' AND submitted_at IS NOT NULL AND claimed_at IS NOT NULL"
        )
        still_queued = gw.query("SELECT count(*) FROM messages WHERE status = 'queued'")[0][0]
        # OTPs with no carrier answer recorded 1 s after the last was sent: counted, not hidden.
        late = gw.query(
            "SELECT status, count(*) FROM messages WHERE type = 'otp' AND submitted_at IS NULL "
            "GROUP BY status"
        )
    lat = sorted(float(r[0]) for r in rows if isinstance(r[0], int))
    store = "PostgreSQL" if args.postgresql else "SQLite"
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; gateway on {store}, "
          "simulated carrier and load generator share the box")  # fmt: skip
    print(f"backlog: {args.backlog:,} promotional accepted; {queued_at_start:,} still queued when "
          f"the first OTP was sent, {still_queued:,} after the last")  # fmt: skip
    print(
        f"OTP accept->submit over {len(lat)} of {args.otps} OTPs "
        f"({statuses.count('202')} accepted): p50 {percentile(lat, 0.5):.0f} ms, "
        f"p99 {percentile(lat, 0.99):.0f} ms, max {lat[-1] if lat else float('nan'):.0f} ms "
        "(target p99 < 200 ms)"
    )
    if late:
        print("  not yet answered by the carrier 1 s after the last OTP: "
              + ", ".join(f"{n} {status}" for status, n in late))  # fmt: skip
    posted.sort()
    if posted:
        print(f"  the POST's 202: p50 {percentile(posted, 0.5):.0f} ms, "
              f"p99 {percentile(posted, 0.99):.0f} ms")  # fmt: skip
    for i, what in enumerate(("accept -> claimed", "claimed -> carrier accepted")):
        part = sorted(float(r[i]) for r in split)
        if part:
            print(f"  {what}: p50 {percentile(part, 0.5):.0f} ms, "
                  f"p99 {percentile(part, 0.99):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
