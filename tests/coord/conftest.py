"""Fixtures for the coordination suite: both coordinators, on a real Redis when one answers.

Each test gets its own random key prefix and deletes its keys afterwards. ``pair`` stands for
two processes of one fleet: two Redis coordinators on the same prefix, or, in-process, the one
local coordinator twice (a process alone is its whole fleet).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator

import pytest

from dakghar.coord import Coordinator, LocalCoordinator
from dakghar.coord.redis import RedisCoordinator

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


REDIS_UP = _redis_answers()
needs_redis = pytest.mark.skipif(not REDIS_UP, reason="no Redis answering on 127.0.0.1:6379")

KINDS = [
    pytest.param("local", id="local"),
    pytest.param("redis", id="redis", marks=needs_redis),
]


@pytest.fixture
def prefix() -> str:
    return f"dakghar-test:{secrets.token_hex(6)}:"


async def _clean(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        names = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if names:
            await client.delete(*names)
    finally:
        await client.aclose()


@pytest.fixture(params=KINDS)
async def pair(
    request: pytest.FixtureRequest, prefix: str
) -> AsyncIterator[tuple[Coordinator, Coordinator]]:
    if request.param == "local":
        local = LocalCoordinator()
        yield local, local
        await local.close()
        return
    async for fleet in _redis_pair(prefix):
        yield fleet


@pytest.fixture
async def redis_pair(prefix: str) -> AsyncIterator[tuple[RedisCoordinator, RedisCoordinator]]:
    """Two Redis coordinators ("processes") on one prefix."""
    async for fleet in _redis_pair(prefix):
        yield fleet


async def _redis_pair(prefix: str) -> AsyncIterator[tuple[RedisCoordinator, RedisCoordinator]]:
    a = RedisCoordinator(REDIS_URL, prefix=prefix)
    b = RedisCoordinator(REDIS_URL, prefix=prefix)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        await _clean(prefix)


@pytest.fixture
async def coordinator(pair: tuple[Coordinator, Coordinator]) -> Coordinator:
    return pair[0]
