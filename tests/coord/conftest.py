"""Fixtures for the coordination suite: both coordinators, on a real Redis when one answers.

Each test gets its own random key prefix and deletes its keys afterwards. ``pair`` stands for
two processes of one fleet: two Redis coordinators on the same prefix, or, in-process, the one
local coordinator twice (a process alone is its whole fleet).
"""

from __future__ import annotations

import asyncio
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


class RedisRelay:
    """A TCP relay to the real Redis that a test can break two ways: ``freeze()`` makes its
    open connections go silent (a partition that sends no reset) while new ones still relay;
    ``down()`` drops every connection and refuses new ones (Redis gone) until ``up()``.
    ``requests`` counts the reads it relayed to Redis (a pipeline is one)."""

    def __init__(self) -> None:
        self.open = True
        self.requests = 0
        self.live: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.frozen: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        pair = (writer, up_writer)
        self.live.append(pair)

        async def relay(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if pair not in self.live:
                    continue  # frozen: swallow, answer nothing
                self.requests += dst is up_writer
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(
            relay(reader, up_writer), relay(up_reader, writer), return_exceptions=True
        )

    def freeze(self) -> None:
        self.frozen.extend(w for pair in self.live for w in pair)
        self.live.clear()

    def down(self) -> None:
        self.open = False
        for w in self.frozen + [w for pair in self.live for w in pair]:
            w.close()
        self.live.clear()
        self.frozen.clear()

    def up(self) -> None:
        self.open = True

    async def stop(self) -> None:
        self.down()
        if self.server is not None:
            self.server.close()
