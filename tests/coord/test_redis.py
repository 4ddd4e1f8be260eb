"""What only the Redis coordinator does: survive a dropped pub/sub connection, share its clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from dakghar.coord import CoordinationUnavailable, LimitCheck
from dakghar.coord.redis import RedisCoordinator

from .conftest import REDIS_URL, RedisRelay, needs_redis

pytestmark = needs_redis


@pytest.fixture
async def admin() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def _kill(admin: Redis, name: str) -> int:
    """Drop the connections of one client name (never anyone else's: the server is shared)."""
    killed = 0
    for client in await admin.client_list():
        if client.get("name") == name:
            await admin.execute_command("CLIENT", "KILL", "ID", client["id"])
            killed += 1
    return killed


async def test_pubsub_reconnects_and_asks_for_a_resync_after_client_kill(
    redis_pair: tuple[RedisCoordinator, RedisCoordinator], admin: Redis
) -> None:
    a, b = redis_pair
    got: asyncio.Queue[bytes] = asyncio.Queue()
    resynced = asyncio.Event()
    sub = b.subscribe(["kill-switch"], lambda t, p: got.put_nowait(p), resynced.set)
    await sub.ready()
    assert await _kill(admin, b.fanout_client_name) == 1
    await asyncio.wait_for(resynced.wait(), 3.0)
    assert b.reconnects >= 1
    await a.publish("kill-switch", b"after")
    assert await asyncio.wait_for(got.get(), 1.0) == b"after"


async def test_a_subscription_added_after_a_reconnect_is_live(
    redis_pair: tuple[RedisCoordinator, RedisCoordinator], admin: Redis
) -> None:
    a, b = redis_pair
    first = b.subscribe(["wakeup"], lambda t, p: None)
    await first.ready()
    await _kill(admin, b.fanout_client_name)
    await asyncio.sleep(0.3)
    got: asyncio.Queue[bytes] = asyncio.Queue()
    later = b.subscribe(["account-pause"], lambda t, p: got.put_nowait(p))
    await later.ready()
    await a.publish("account-pause", b"acc_9")
    assert await asyncio.wait_for(got.get(), 1.0) == b"acc_9"


async def test_keys_live_under_the_prefix_and_expire(
    redis_pair: tuple[RedisCoordinator, RedisCoordinator], admin: Redis
) -> None:
    a = redis_pair[0]
    await a.limit("acct:1", 10, 5)
    await a.reserve("smsc", 100, 1, 5)
    await a.acquire_bind("smsc", 2, "me", 2.0)
    names = sorted([k.decode() async for k in admin.scan_iter(match=a.prefix + "*")])
    assert names == [a.prefix + "bind:smsc:0", a.prefix + "pace:smsc", a.prefix + "rl:acct:1"]
    for name in names:
        assert 0 < await admin.pttl(name) <= 2000


async def test_an_unreachable_redis_is_reported_as_coordination_unavailable() -> None:
    dead = RedisCoordinator("redis://127.0.0.1:1/0", prefix="x:", timeout=0.2)
    try:
        with pytest.raises(CoordinationUnavailable):
            await dead.limit("k", 1, 1)
        with pytest.raises(CoordinationUnavailable):
            await dead.reserve("c", 1, 1, 1)
    finally:
        await dead.close()


async def test_the_script_cache_is_refilled_after_a_flush(
    redis_pair: tuple[RedisCoordinator, RedisCoordinator], admin: Redis
) -> None:
    a = redis_pair[0]
    assert (await a.limit("k", 1, 2)).allowed
    # SCRIPT FLUSH would empty the cache of every user of this shared server; a fresh script
    # text (never loaded) takes the same path: EVALSHA answers NOSCRIPT.
    from dakghar.coord import scripts

    fresh = scripts.Script(scripts.RELEASE + "\n-- " + a.prefix)
    assert await fresh(a.client, [a.prefix + "none"], ["me"]) == 0  # NOSCRIPT, then EVAL
    assert await fresh(a.client, [a.prefix + "none"], ["me"]) == 0  # EVALSHA finds it now


async def test_a_silent_pubsub_connection_is_noticed_and_replaced(prefix: str) -> None:
    proxy = RedisRelay()
    port = await proxy.start()
    a = RedisCoordinator(REDIS_URL, prefix=prefix)
    b = RedisCoordinator(f"redis://127.0.0.1:{port}/0", prefix=prefix)
    try:
        got: asyncio.Queue[bytes] = asyncio.Queue()
        resynced = asyncio.Event()
        sub = b.subscribe(["kill-switch"], lambda t, p: got.put_nowait(p), resynced.set)
        await sub.ready()
        proxy.freeze()
        await a.publish("kill-switch", b"lost in the partition")
        await asyncio.wait_for(resynced.wait(), 3.0 + 2 * 1.0 + 1.0)
        await a.publish("kill-switch", b"after")
        assert await asyncio.wait_for(got.get(), 1.0) == b"after"
    finally:
        await a.close()
        await b.close()
        await proxy.stop()


async def test_the_limits_asked_for_in_one_turn_share_one_round_trip(prefix: str) -> None:
    from tests.coord.conftest import RedisRelay

    relay = RedisRelay()
    port = await relay.start()
    a = RedisCoordinator(f"redis://127.0.0.1:{port}/0", prefix=prefix)
    try:
        assert (await a.limit("warm", 1, 1)).allowed  # the connection and the script cache
        before = relay.requests
        results = await asyncio.gather(*(a.limit("k", 1, 5) for _ in range(12)))
        assert [r.allowed for r in results] == [True] * 5 + [False] * 7  # each, in order
        assert relay.requests - before == 1
        assert (await a.limit("k", 1, 5)).allowed is False  # the next turn: a call of its own
        assert relay.requests - before == 2
    finally:
        await a.close()
        await relay.stop()


async def test_limit_many_past_one_script_call_keeps_the_order(
    redis_pair: tuple[RedisCoordinator, RedisCoordinator],
) -> None:
    # More checks than one GCRA call takes (256): the second call sees the first call's cells.
    a = redis_pair[0]
    decisions = await a.limit_many([LimitCheck("k", 0.001, 300)] * 301)
    assert [d.allowed for d in decisions] == [True] * 300 + [False]
    assert decisions[299].remaining == 0
    assert decisions[300].retry_after > 900


async def test_limits_asked_in_one_turn_share_one_command(
    redis_pair: tuple[RedisCoordinator, RedisCoordinator],
) -> None:
    a = redis_pair[0]
    sent: list[tuple[object, ...]] = []
    execute = a.client.execute_command

    async def counting(*args: object, **options: object) -> object:
        sent.append(args)
        return await execute(*args, **options)

    a.client.execute_command = counting  # type: ignore[method-assign]
    got = await asyncio.gather(*(a.limit(f"k{i % 3}", 1, 2) for i in range(9)))
    assert [d.allowed for d in got] == [True] * 6 + [False] * 3
    assert [s[0] for s in sent] == ["EVALSHA"]
