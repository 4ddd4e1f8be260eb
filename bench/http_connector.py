"""One HTTP provider connector, sustained: our Twilio connector -> a local Twilio-like API.

The provider runs in its own process (this script with --serve) and answers every
``Messages.json`` POST after --delay-ms (50 ms by default), as a real provider's API might. The
connector keeps --in-flight requests outstanding over its pooled keep-alive connections (one
asyncio task per slot, no threads), each submit being one real form-encoded HTTP request with
basic auth and a JSON answer. Prints messages/s and submit latency p50/p99.
Target (issue 7): >= 1,000 msg/s through one connector on 2 cores.

    python bench/http_connector.py [--count 20000] [--in-flight 256] [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import time

from aiohttp import web

from _harness import free_port, percentile
from dakghar.connectors.base import Outbound, Report
from dakghar.connectors.http.factory import build_http_connector

ACCOUNT = "ACbench0000000000000000000000000"


def serve(port: int, delay: float) -> None:
    """The provider side: Twilio's Messages.json, answering after ``delay`` seconds."""
    ids = itertools.count(1)

    async def messages(request: web.Request) -> web.Response:
        form = await request.post()
        await asyncio.sleep(delay)
        sid = f"SM{next(ids):032x}"
        return web.json_response({"sid": sid, "status": "queued", "to": form["To"]}, status=201)

    app = web.Application()
    app.router.add_post(f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json", messages)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def run(port: int, count: int, in_flight: int) -> dict[str, float]:
    os.environ["BENCH_TWILIO_TOKEN"] = "bench-token"
    table = {"type": "twilio", "account_sid": ACCOUNT, "auth_token_env": "BENCH_TWILIO_TOKEN",
             "sender": "+15005550006", "base_url": f"http://127.0.0.1:{port}",
             "max_in_flight": in_flight, "timeout": 30}  # fmt: skip
    connector = build_http_connector("bench", table)

    async def no_reports(report: Report) -> None:
        return None

    await connector.start(no_reports)
    latencies: list[float] = []
    remaining = iter(range(count))

    async def worker() -> None:
        for i in remaining:
            message = Outbound(f"msg{i}", f"+9198{i % 10**8:08d}", None, "Your order has shipped",
                               "GSM-7", "transactional", 3600)  # fmt: skip
            t0 = time.perf_counter()
            await connector.submit(message)
            latencies.append(time.perf_counter() - t0)

    warm = iter(range(in_flight))
    await asyncio.gather(*(connector.submit(Outbound(f"w{i}", "+919800000000", None, "warm",
                           "GSM-7", "otp", 60)) for i in warm))  # fmt: skip
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - start
    await connector.stop()
    latencies.sort()
    return {
        "per_s": count / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--in-flight", type=int, default=256)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.delay_ms / 1000)
        return
    port = free_port()
    provider = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--delay-ms", str(args.delay_ms)]
    )
    try:
        time.sleep(1.5)
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        r = asyncio.run(run(port, args.count, args.in_flight))
    finally:
        provider.terminate()
        provider.wait(10)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
          "connector and provider in separate processes on loopback")  # fmt: skip
    print(
        f"{args.count:,} messages, {args.in_flight} in flight, provider answers after "
        f"{args.delay_ms:.0f} ms: {r['per_s']:,.0f} msg/s, submit p50 {r['p50_ms']:.1f} ms "
        f"p99 {r['p99_ms']:.1f} ms (target >= 1,000 msg/s)"
    )


if __name__ == "__main__":
    main()
