"""A connector's fleet pacing when Redis is away: each dispatcher keeps its share of the rate.

Before, a dispatcher whose shared pacer did not answer sent nothing at all for as long as Redis
was down. Now it paces itself at the contracted rate divided by the dispatchers the store's
register counts alive, so the fleet keeps sending and together stays within the contract.
"""

from __future__ import annotations

import asyncio
import time

from dakghar.coord.redis import RedisCoordinator
from dakghar.pipeline.pacing import FleetPacer
from tests.coord.conftest import REDIS_URL, needs_redis


async def _send(pacer: FleetPacer, n: int) -> float:
    t0 = time.monotonic()
    for _ in range(n):
        async with pacer.slot():
            pass
    return time.monotonic() - t0


async def test_with_redis_away_a_dispatcher_sends_at_its_share_of_the_rate() -> None:
    away = RedisCoordinator("redis://127.0.0.1:1/0", prefix="dakghar-test:away:", timeout=0.2)
    try:
        pacer = FleetPacer("carrier", 100.0, 10, away, peers=lambda: 4)
        took = await asyncio.wait_for(_send(pacer, 30), 10)
        # 100/s shared by four: 25/s each, so 30 sends take a little over a second (the
        # first waits for the unanswered reservation), never the 0.3 s of the whole rate.
        assert 1.0 <= took <= 3.0, took
        assert pacer.state()["shared_pacer_away"] and pacer.unshared_sends == 30
    finally:
        await away.close()


@needs_redis
async def test_with_redis_there_the_fleet_rate_comes_from_it(prefix: str) -> None:
    coord = RedisCoordinator(REDIS_URL, prefix=prefix)
    try:
        pacer = FleetPacer("carrier", 100.0, 10, coord, peers=lambda: 4)
        took = await _send(pacer, 30)
        assert took < 0.6, took  # the whole fleet's 100/s, not a quarter of it
        assert pacer.unshared_sends == 0 and pacer.reservations > 0
    finally:
        await coord.close()
