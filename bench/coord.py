"""Coordination benchmark: the Redis coordinator's limiter, pacing and fan-out on a real Redis.

Measures, each for --seconds and as the median of --runs:
  1. ``limit`` one call at a time (one key per call, from a pool of 10,000 keys);
  2. ``limit`` from --concurrency tasks at once (the client's connection pool);
  3. ``limit_many`` of --batch checks (one pipelined round trip per batch), in checks/s;
  4. ``reserve`` on one connector at a rate no one reaches (every call is granted slots), in
     calls/s and slots/s: with slots for 50 ms per call, one call serves many messages;
  5. fan-out latency: publish on one coordinator, receive on another (p50/p99 over --pings).
Every key lives under a random prefix and is deleted at the end.

    python bench/coord.py [--url redis://127.0.0.1:6379/0] [--seconds 2] [--runs 3]
                          [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from dakghar.coord import LimitCheck
from dakghar.coord.redis import RedisCoordinator


async def rate_of(seconds: float, step: Callable[[int], Awaitable[int]]) -> float:
    """Operations per second of ``step(i)`` (which returns how many operations it did)."""
    done, i = 0, 0
    start = time.perf_counter()
    until = start + seconds
    while time.perf_counter() < until:
        done += await step(i)
        i += 1
    return done / (time.perf_counter() - start)


async def concurrent_rate(
    seconds: float, tasks: int, step: Callable[[int], Awaitable[int]]
) -> float:
    """Operations per second of ``tasks`` loops of ``step`` at once."""
    start = time.perf_counter()
    until = start + seconds
    counts = [0] * tasks

    async def loop(n: int) -> None:
        i = n
        while time.perf_counter() < until:
            counts[n] += await step(i)
            i += tasks

    await asyncio.gather(*(loop(n) for n in range(tasks)))
    return sum(counts) / (time.perf_counter() - start)


async def fanout_latency(a: RedisCoordinator, b: RedisCoordinator, pings: int) -> list[float]:
    """Publish-to-callback latencies (ms), one message in flight at a time."""
    arrived: asyncio.Queue[float] = asyncio.Queue()
    sub = b.subscribe(["bench"], lambda t, p: arrived.put_nowait(time.perf_counter()))
    await sub.ready()
    out = []
    for _ in range(pings):
        sent = time.perf_counter()
        await a.publish("bench", b"x")
        out.append((await asyncio.wait_for(arrived.get(), 2.0) - sent) * 1000)
    sub.close()
    return out


async def main(args: argparse.Namespace) -> None:
    prefix = f"dakghar-bench:{secrets.token_hex(6)}:"
    a = RedisCoordinator(args.url, prefix=prefix)
    b = RedisCoordinator(args.url, prefix=prefix)
    keys = [f"key-{i}" for i in range(10_000)]

    async def one(i: int) -> int:
        await a.limit(keys[i % len(keys)], 1000, 100)
        return 1

    async def batch(i: int) -> int:
        start = (i * args.batch) % len(keys)
        checks = [LimitCheck(keys[(start + j) % len(keys)], 1000, 100) for j in range(args.batch)]
        await a.limit_many(checks)
        return args.batch

    slots = 0

    async def reserve(i: int) -> int:
        nonlocal slots
        slots += (await a.reserve(f"smsc-{i % 64}", 1e6, 1, args.want)).count
        return 1

    figures: dict[str, list[float]] = {}
    try:
        await a.limit("warm-up", 1, 1)
        for _ in range(args.runs):
            figures.setdefault("limit, one at a time (calls/s)", []).append(
                await rate_of(args.seconds, one)
            )
            figures.setdefault(f"limit, {args.concurrency} concurrent (calls/s)", []).append(
                await concurrent_rate(args.seconds, args.concurrency, one)
            )
            figures.setdefault(f"limit_many of {args.batch} (checks/s)", []).append(
                await rate_of(args.seconds, batch)
            )
            slots = 0
            started = time.perf_counter()
            calls = await rate_of(args.seconds, reserve)
            figures.setdefault("reserve, one at a time (calls/s)", []).append(calls)
            figures.setdefault(f"  slots granted, want={args.want} (slots/s)", []).append(
                slots / (time.perf_counter() - started)
            )
        latencies = sorted(await fanout_latency(a, b, args.pings))
    finally:
        await a.close()
        await b.close()
        admin = Redis.from_url(args.url)
        names = [k async for k in admin.scan_iter(match=prefix + "*", count=1000)]
        if names:
            await admin.delete(*names)
        await admin.aclose()

    load = os.getloadavg()[0]
    print(
        f"Redis coordinator at {args.url}; {args.loop} loop; {os.cpu_count()} CPUs, load "
        f"{load:.1f}; median of {args.runs} runs of {args.seconds:g} s"
    )
    for name, values in figures.items():
        print(f"  {name:<44} {statistics.median(values):>10,.0f}")
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"  {'fan-out publish -> callback (ms)':<44} p50 {p50:.2f}  p99 {p99:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--want", type=int, default=50, help="slots asked for per reserve call")
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parsed = parser.parse_args()
    if parsed.loop == "uvloop":
        import uvloop

        uvloop.run(main(parsed))
    else:
        asyncio.run(main(parsed))
