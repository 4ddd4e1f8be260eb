"""BindLease keeps a bind slot while its bind is open, on both coordinators."""

from __future__ import annotations

import asyncio

from dakghar.coord import Coordinator
from dakghar.coord.leases import BindLease

Pair = tuple[Coordinator, Coordinator]


async def test_a_held_lease_outlives_its_ttl_and_is_released_on_stop(pair: Pair) -> None:
    a, b = pair
    lease = BindLease(a, "smsc", 1, "host-a/1", ttl=0.3)
    assert await lease.acquire() == 0
    await asyncio.sleep(0.75)  # 2.5 TTLs: only renewals keep it
    assert not lease.lost.is_set()
    assert await b.acquire_bind("smsc", 1, "host-b/1", 0.3) is None
    await lease.release()
    assert await b.acquire_bind("smsc", 1, "host-b/1", 0.3) == 0


async def test_leases_of_one_connector_never_exceed_its_slots(pair: Pair) -> None:
    a, b = pair
    leases = [BindLease(a if i % 2 else b, "smsc", 2, f"host/{i}", ttl=0.3) for i in range(4)]
    slots = [await lease.acquire() for lease in leases]
    assert sorted(s for s in slots if s is not None) == [0, 1]
    await asyncio.sleep(0.4)
    assert [await lease.acquire() for lease in leases[2:]] == [None, None]
    for lease in leases:
        await lease.release()


async def test_a_lease_taken_away_is_reported_lost(pair: Pair) -> None:
    a, b = pair
    lease = BindLease(a, "smsc", 1, "host-a/1", ttl=0.3)
    assert await lease.acquire() == 0
    # As if the lease had expired while this process stalled, and another took the slot.
    assert await b.release_bind("smsc", 0, "host-a/1")
    assert await b.acquire_bind("smsc", 1, "host-b/1", 5.0) == 0
    await asyncio.wait_for(lease.lost.wait(), 1.0)
    await lease.release()
    assert await b.renew_bind("smsc", 0, "host-b/1", 5.0)  # the new owner's lease is untouched
