"""The Redis coordinator: the processes of a fleet share limits, fan-out, pacing and bind leases.

Chosen by ``open_coordinator`` when ``DAKGHAR_QUEUE_URL`` is ``redis://`` or ``rediss://``.
Redis holds nothing durable (``coord.base``). Commands go through one pooled client; limits,
pacing and leases are Lua scripts (``coord.scripts``, EVALSHA with the script cache). Fan-out
reads from one pub/sub connection of its own, kept by one task that reconnects after a drop,
re-subscribes and tells subscribers to resync, and pings every second so a silent connection is
noticed within a few seconds. Key names come from ``coord.keys``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dakghar.coord import keys, scripts
from dakghar.coord.base import (
    PACING_HORIZON,
    CoordinationUnavailable,
    Grant,
    LimitCheck,
    MessageCallback,
)
from dakghar.core.ratelimit import Decision
from dakghar.observability.logging import get_logger

log = get_logger("dakghar.coord")

_GCRA = scripts.Script(scripts.GCRA)
_PACE = scripts.Script(scripts.PACE)
_DISTINCT = scripts.Script(scripts.DISTINCT)
_LOWER_RATE = scripts.Script(scripts.LOWER_RATE)
_ACQUIRE = scripts.Script(scripts.ACQUIRE)
_RENEW = scripts.Script(scripts.RENEW)
_RELEASE = scripts.Script(scripts.RELEASE)

PING_INTERVAL = 1.0  # seconds between pings on the pub/sub connection
SILENCE_LIMIT = 3.0  # no answer for this long: the pub/sub connection is presumed dead
_BACKOFF_MAX = 1.0


def _gcra_args(rate: float, burst: int, cost: int) -> tuple[float, float, int]:
    if rate <= 0 or burst < 1:
        raise ValueError("rate must be > 0 and burst >= 1")
    emission = 1e6 / rate
    return emission, emission * (burst - 1), cost


# Checks per GCRA call: one command for a turn's requests, short enough that a call never holds
# the server for long (each check is a GET and a SET inside the script).
_GCRA_BATCH = 256


def _decisions(reply: Sequence[int]) -> list[Decision]:
    return [
        Decision(bool(reply[i]), reply[i + 1] / 1e6, int(reply[i + 2]))
        for i in range(0, len(reply), 3)
    ]


class _RedisSubscription:
    def __init__(
        self,
        owner: RedisCoordinator,
        topics: frozenset[str],
        callback: MessageCallback,
        on_resync: Callable[[], None] | None,
    ) -> None:
        self.owner = owner
        self.topics = topics
        self.callback = callback
        self.on_resync = on_resync

    def close(self) -> None:
        """Stop delivering to this subscription's callback."""
        self.owner._unsubscribe(self)

    async def ready(self, timeout: float = 5.0) -> None:
        """Return once Redis has confirmed every topic of this subscription."""
        await self.owner._wait_confirmed(self.topics, timeout)


class RedisCoordinator:
    """``Coordinator`` over one Redis server, every key and channel under ``prefix``."""

    shared = True

    def __init__(self, url: str, *, prefix: str = "dakghar:", timeout: float = 2.0) -> None:
        self.url = url
        self.prefix = prefix
        self.client: Redis = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        # The pub/sub connection has no silent retries: a drop must reach the reader task, which
        # reconnects itself and knows to tell subscribers that messages may have been missed.
        self.fanout_client_name = "dakghar-fanout-" + secrets.token_hex(6)
        self._fanout_client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            client_name=self.fanout_client_name,
        )
        self._subs: set[_RedisSubscription] = set()
        # When a bind-lease call last found Redis away (acquire_bind waits a TTL after it).
        self._binds_away_at = -1e9
        self._pubsub: PubSub | None = None
        self._confirmed: set[str] = set()
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # ``limit`` checks waiting for the end of this turn of the event loop (one round trip).
        self._limits: list[tuple[LimitCheck, asyncio.Future[Decision]]] = []
        self._closed = False
        self.reconnects = 0

    # -- limits -------------------------------------------------------------------------------

    async def limit(
        self, key: str, rate: float, burst: int, cost: int = 1, now: float | None = None
    ) -> Decision:
        """Account ``cost`` requests for ``key``; ``now`` (seconds) only for a shared test clock.

        Checks asked for in the same turn of the event loop (the requests one read of the
        sockets let in) share one script call, sent at the end of that turn: a request's
        check costs a share of one command instead of a command of its own."""
        if now is not None:
            return (await self._gcra([LimitCheck(key, rate, burst, cost)], round(now * 1e6)))[0]
        loop = asyncio.get_running_loop()
        decided: asyncio.Future[Decision] = loop.create_future()
        if not self._limits:
            loop.call_soon(self._send_limits)
        self._limits.append((LimitCheck(key, rate, burst, cost), decided))
        return await decided

    def _send_limits(self) -> None:
        batch, self._limits = self._limits, []
        task = asyncio.get_running_loop().create_task(self._limit_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _limit_batch(self, batch: list[tuple[LimitCheck, asyncio.Future[Decision]]]) -> None:
        try:
            decisions = await self.limit_many([check for check, _ in batch])
        except Exception as exc:  # CoordinationUnavailable, or a cancelled close
            for _, decided in batch:
                if not decided.done():
                    decided.set_exception(exc)
            return
        for (_, decided), decision in zip(batch, decisions, strict=True):
            if not decided.done():
                decided.set_result(decision)

    async def limit_many(self, checks: Sequence[LimitCheck]) -> list[Decision]:
        """``limit`` for each check, in order: one script call for up to 256 checks."""
        out: list[Decision] = []
        for i in range(0, len(checks), _GCRA_BATCH):
            out += await self._gcra(checks[i : i + _GCRA_BATCH], "")
        return out

    async def _gcra(self, checks: Sequence[LimitCheck], now: int | str) -> list[Decision]:
        """One GCRA call for ``checks``: every cell in one script, one command, one reply."""
        cells = [keys.limit(self.prefix, c.key) for c in checks]
        args: list[str | int | float] = [now]
        for c in checks:
            args += _gcra_args(c.rate, c.burst, c.cost)
        try:
            return _decisions(await _GCRA(self.client, cells, args))
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis limit failed: {exc}") from exc

    async def distinct(
        self,
        key: str,
        member: str,
        window: float,
        most: int,
        *,
        add: bool,
        now: float | None = None,
    ) -> tuple[bool, float]:
        """Admit ``member`` among the distinct members of ``key`` seen in the last ``window``
        seconds (known, or fewer than ``most``); ``add`` records it. (admitted, retry_after)."""
        args: list[str | int | float] = [member, int(window * 1e6), most, int(add),
                                         "" if now is None else int(now * 1e6)]  # fmt: skip
        try:
            ok, retry, _count = await _DISTINCT(
                self.client, [keys.distinct(self.prefix, key)], args
            )
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis distinct failed: {exc}") from exc
        return bool(ok), int(retry) / 1e6

    # -- pacing -------------------------------------------------------------------------------

    async def reserve(self, connector: str, rate: float, burst: int, want: int) -> Grant:
        """Up to ``want`` send slots of ``connector`` within the next ``PACING_HORIZON``."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        names = [keys.pacing(self.prefix, connector), keys.lowered_rate(self.prefix, connector)]
        args = [rate, burst, want, PACING_HORIZON * 1e6]
        try:
            retry, offsets, used = await _PACE(self.client, names, args)
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis reserve failed: {exc}") from exc
        # Offsets count from the server's now, which lies before the reply's arrival: counting
        # them from the arrival can only make sends later, never faster than the rate.
        base = time.monotonic()
        return Grant([base + o / 1e6 for o in offsets], max(0.0, retry / 1e6), float(used))

    async def lower_rate(self, connector: str, rate: float, ttl: float) -> None:
        """Pace ``connector`` at no more than ``rate`` fleet-wide for ``ttl`` s."""
        if rate <= 0:
            raise ValueError("rate must be > 0")
        name = keys.lowered_rate(self.prefix, connector)
        try:
            await _LOWER_RATE(self.client, [name], [rate, _ms(ttl)])
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis lower_rate failed: {exc}") from exc

    # -- bind leases --------------------------------------------------------------------------

    async def acquire_bind(self, connector: str, slots: int, owner: str, ttl: float) -> int | None:
        """A free slot index in ``range(slots)`` leased to ``owner`` for ``ttl`` s, else None.

        Not within ``ttl`` of this process last finding Redis away: the binds held through
        the outage take their slots again in that time (``renew_bind``), and a slot that
        looks free must not be handed to a new bind before they have."""
        if time.monotonic() - self._binds_away_at < ttl:
            return None
        names = [keys.bind(self.prefix, connector, i) for i in range(slots)]
        try:
            slot = int(await _ACQUIRE(self.client, names, [owner, _ms(ttl)]))
        except (RedisError, OSError) as exc:
            self._binds_away_at = time.monotonic()
            raise CoordinationUnavailable(f"redis acquire_bind failed: {exc}") from exc
        return None if slot < 0 else slot

    async def renew_bind(self, connector: str, slot: int, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease on ``slot`` to ``ttl`` s (a slot nobody holds, as after
        Redis lost its keys, is taken again); False when another holds it."""
        name = keys.bind(self.prefix, connector, slot)
        try:
            return bool(await _RENEW(self.client, [name], [owner, _ms(ttl)]))
        except (RedisError, OSError) as exc:
            self._binds_away_at = time.monotonic()
            raise CoordinationUnavailable(f"redis renew_bind failed: {exc}") from exc

    async def release_bind(self, connector: str, slot: int, owner: str) -> bool:
        """Give ``slot`` back if ``owner`` still holds it; False when it did not."""
        name = keys.bind(self.prefix, connector, slot)
        try:
            return bool(await _RELEASE(self.client, [name], [owner]))
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis release_bind failed: {exc}") from exc

    # -- fan-out ------------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send ``payload`` to every subscriber of ``topic`` in the fleet."""
        try:
            await self.client.publish(keys.channel(self.prefix, topic), payload)
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis publish failed: {exc}") from exc

    def subscribe(
        self,
        topics: Iterable[str],
        callback: MessageCallback,
        on_resync: Callable[[], None] | None = None,
    ) -> _RedisSubscription:
        """Call ``callback(topic, payload)`` for each message; ``on_resync()`` after a gap.

        Must be called on the running loop; ``await subscription.ready()`` to know that
        messages published from now on will arrive.
        """
        sub = _RedisSubscription(self, frozenset(topics), callback, on_resync)
        if self._closed:
            raise RuntimeError("coordinator closed")
        self._subs.add(sub)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        else:
            self._send_subscriptions()
        return sub

    def _wanted(self) -> set[str]:
        return {keys.channel(self.prefix, t) for s in self._subs for t in s.topics}

    def _unsubscribe(self, sub: _RedisSubscription) -> None:
        self._subs.discard(sub)
        self._send_subscriptions()

    def _send_subscriptions(self) -> None:
        if self._pubsub is not None:
            task = asyncio.get_running_loop().create_task(self._sync_channels(self._pubsub))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sync_channels(self, pubsub: PubSub) -> None:
        wanted = self._wanted()
        have = {c.decode() if isinstance(c, bytes) else c for c in pubsub.channels}
        if self._closed:
            return
        # A failure here also breaks the reader's connection, which reconnects and catches up.
        # (AttributeError: redis-py's answer to a command on a connection closed under it.)
        with contextlib.suppress(RedisError, OSError, AttributeError):
            if wanted - have:
                await pubsub.subscribe(*(wanted - have))
            if have - wanted:
                await pubsub.unsubscribe(*(have - wanted))
                self._confirmed -= have - wanted

    async def _wait_confirmed(self, topics: Iterable[str], timeout: float) -> None:
        channels = {keys.channel(self.prefix, t) for t in topics}
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: channels <= self._confirmed)

    async def _read(self) -> None:
        """The one reader of the pub/sub connection: deliver, ping, reconnect after a drop."""
        failures = 0
        gap = False
        while not self._closed:
            pubsub = self._fanout_client.pubsub()
            try:
                wanted = self._wanted()
                if wanted:
                    await pubsub.subscribe(*wanted)
                else:
                    await pubsub.connect()  # type: ignore[no-untyped-call]
                self._pubsub = pubsub
                failures = 0
                await self._sync_channels(pubsub)  # subscriptions made while connecting
                await self._pump(pubsub, gap)
            except Exception as exc:  # whatever broke, the one reader must keep reading
                if self._closed:
                    break
                gap = True
                self.reconnects += 1
                failures += 1
                if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
                    log.warning("pub/sub connection lost; reconnecting", error=str(exc))
                else:
                    log.exception("pub/sub reader failed; reconnecting")
            finally:
                self._pubsub = None
                self._confirmed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
            if self._closed:
                break
            await asyncio.sleep(min(_BACKOFF_MAX, 0.05 * 2 ** min(failures, 5)))

    async def _pump(self, pubsub: PubSub, gap: bool) -> None:
        heard = time.monotonic()
        next_ping = heard + PING_INTERVAL
        while not self._closed:
            message = await pubsub.get_message(timeout=PING_INTERVAL / 2)
            now = time.monotonic()
            if message is not None:
                heard = now
                gap = await self._handle(message, gap)
            if now >= next_ping:
                await pubsub.ping()
                next_ping = now + PING_INTERVAL
            if now - heard > SILENCE_LIMIT:
                raise RedisTimeoutError("no answer on the pub/sub connection")

    async def _handle(self, message: dict[str, Any], gap: bool) -> bool:
        kind = message["type"]
        kind = kind.decode() if isinstance(kind, bytes) else kind
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if kind == "message":
            topic = channel[len(keys.channel(self.prefix, "")) :]
            for sub in list(self._subs):
                if topic in sub.topics:
                    try:
                        sub.callback(topic, message["data"])
                    except Exception:  # one subscriber's bug must not stop the others
                        log.exception("fan-out callback failed", topic=topic)
        elif kind == "subscribe":
            async with self._changed:
                self._confirmed.add(channel)
                self._changed.notify_all()
            if gap and self._wanted() <= self._confirmed:
                for sub in list(self._subs):
                    if sub.on_resync is not None:
                        try:
                            sub.on_resync()
                        except Exception:
                            log.exception("fan-out resync callback failed")
                return False
        return gap

    async def close(self) -> None:
        """Stop the pub/sub reader and close both connections."""
        self._closed = True
        self._subs.clear()
        if self._reader is not None:
            # The flag ends the reader's loops even if redis-py swallows this cancel (3.11).
            self._reader.cancel()
            await asyncio.wait({self._reader}, timeout=SILENCE_LIMIT)
            self._reader = None
        await self._fanout_client.aclose()
        await self.client.aclose()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
