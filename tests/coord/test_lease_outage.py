"""SMPP bind leases through a Redis outage, against the real Redis behind a relay we cut.

An open bind stays open while Redis does not answer (nobody can take a slot then, and closing
every bind would stop delivery for want of a store of what may be lost). When Redis answers
again, the holder takes its slot back even if Redis lost its keys, and a process that saw the
outage waits one TTL before taking a slot that looks free.
"""

from __future__ import annotations

import asyncio

from dakghar.coord.base import CoordinationUnavailable
from dakghar.coord.leases import BindLease
from dakghar.coord.redis import RedisCoordinator
from tests.coord.conftest import REDIS_URL, RedisRelay, needs_redis

pytestmark = needs_redis


async def _try_slot(coord: RedisCoordinator) -> int | None:
    try:
        return await coord.acquire_bind("smsc", 1, "host-b/1", 0.6)
    except CoordinationUnavailable:
        return None


async def test_a_bind_outlives_a_redis_outage_and_takes_its_slot_back(prefix: str) -> None:
    gate = RedisRelay()
    port = await gate.start()
    holder = RedisCoordinator(f"redis://127.0.0.1:{port}/0", prefix=prefix, timeout=0.2)
    other = RedisCoordinator(f"redis://127.0.0.1:{port}/0", prefix=prefix, timeout=0.2)
    admin = RedisCoordinator(REDIS_URL, prefix=prefix)
    lease = BindLease(holder, "smsc", 1, "host-a/1", ttl=0.6)
    try:
        assert await lease.acquire() == 0
        gate.down()
        for _ in range(5):  # well past the TTL; the other process keeps asking for a slot
            assert await _try_slot(other) is None  # (as SmppConnector._hold does)
            await asyncio.sleep(0.3)
        # The lease is unconfirmed, not lost: the bind stays open.
        assert lease.unconfirmed and not lease.lost.is_set()
        slot_key = f"{prefix}bind:smsc:0"
        assert await admin.client.get(slot_key) is None  # expired in Redis meanwhile
        gate.up()  # Redis is back, without the slot's key
        # The other process saw the outage: it takes no slot within a TTL, while the holder's
        # next renewal (every TTL/12 while unconfirmed) takes its slot back.
        assert await _try_slot(other) is None
        for _ in range(50):
            if not lease.unconfirmed:
                break
            await asyncio.sleep(0.05)
        assert not lease.unconfirmed and not lease.lost.is_set()
        await asyncio.sleep(0.7)  # a TTL later the other may try: the slot is held
        assert await _try_slot(other) is None
        assert await admin.client.get(slot_key) == b"host-a/1"
    finally:
        await lease.release()
        for c in (holder, other, admin):
            await c.close()
        await gate.stop()
