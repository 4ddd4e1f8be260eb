"""Webhook POSTs: CPU per request of Dakghar's webhook client beside aiohttp's ClientSession.

The receiver is an aiohttp server in its own process on loopback, answering 204. The same
--count signed-looking JSON POSTs go through each client at --conc in flight, alternating over
--rounds; printed: requests/s and the client process's CPU per request (``time.process_time``),
medians. The client's CPU is what the delivery side pays for every webhook.

    python bench/webhooks.py [--count 20000] [--conc 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp

from _harness import free_port
from dakghar.webhooks.client import WebhookClient
from dakghar.webhooks.resolver import GuardedResolver

RECEIVER = """
import sys
from aiohttp import web
async def hook(request):
    await request.read()
    return web.Response(status=204)
app = web.Application()
app.router.add_post("/hook", hook)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
BODY = json.dumps(
    {"event_id": "evt_01JDZ8Q3V5X7Y9A1B3C5D7E9F0", "type": "message.status",
     "message_id": "msg_01JDZ8Q3V5X7Y9A1B3C5D7E9F0", "status": "delivered", "error_code": None,
     "reference": None, "at": "2026-12-02T21:00:00.000Z", "segments": 1, "connector": "sink"}
).encode()  # fmt: skip
HEADERS = {
    "Content-Type": "application/json",
    "Dakghar-Signature": "t=1764709200,v1=" + "ab" * 32,
    "Dakghar-Event-Id": "evt_01JDZ8Q3V5X7Y9A1B3C5D7E9F0",
}


async def fan_out(post: Callable[[], Awaitable[int]], count: int, conc: int) -> None:
    gate = asyncio.Semaphore(conc)

    async def one() -> None:
        async with gate:
            status = await post()
            assert status == 204, status

    await asyncio.gather(*(one() for _ in range(count)))


async def with_aiohttp(url: str, count: int, conc: int) -> None:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=conc),
        timeout=aiohttp.ClientTimeout(total=10),
        headers={"User-Agent": "Dakghar-Webhooks/1"},
        trust_env=False,
    ) as session:

        async def post() -> int:
            async with session.post(url, data=BODY, headers=HEADERS, allow_redirects=False) as r:
                await r.read()
                return r.status

        await fan_out(post, count, conc)


async def with_dakghar(url: str, count: int, conc: int) -> None:
    client = WebhookClient(
        GuardedResolver(allow_private=True), timeout=10, limit=conc, user_agent="Dakghar-Webhooks/1"
    )
    try:
        await fan_out(lambda: client.post(url, BODY, HEADERS), count, conc)
    finally:
        await client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--conc", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    url = f"http://127.0.0.1:{port}/hook"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                asyncio.run(with_dakghar(url, 1, 1))
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("the receiver did not start")
                time.sleep(0.1)
        results: dict[str, list[tuple[float, float]]] = {"aiohttp": [], "dakghar": []}
        for _ in range(args.rounds):
            for name, run in (("aiohttp", with_aiohttp), ("dakghar", with_dakghar)):
                cpu, wall = time.process_time(), time.perf_counter()
                asyncio.run(run(url, args.count, args.conc))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                results[name].append((args.count / wall, cpu / args.count * 1e6))
    finally:
        receiver.terminate()
        receiver.wait()
    print(f"{args.count:,} POSTs at {args.conc} in flight, {args.rounds} rounds, medians; "
          "receiver in its own process (aiohttp, 204)")  # fmt: skip
    for name, rows in results.items():
        rate = statistics.median(r for r, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        print(f"{name:8s} {rate:8,.0f} req/s   client CPU {cpu:5.1f} us per POST")


if __name__ == "__main__":
    main()
