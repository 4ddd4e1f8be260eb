"""The coordination seam: what the processes of one fleet share that may be lost and rebuilt.

Rate-limit cells (API keys, OTP and pumping velocity, campaign pacing), wake-up hints,
kill-switch / account-pause / key-revocation fan-out, fleet-wide pacing of each connector and
SMPP bind leases. Nothing here is durable: the store (``dakghar.store``) holds the truth, so a
lost cell means a briefly generous limit, a lost hint means a poll, and a lost lease means a
bind re-acquired after its TTL. Two implementations sit beside this file: ``local.py`` (one
process is the whole fleet) and ``redis.py`` (the fleet shares one Redis).

Call sites stay cheap by asking for many things at once: ``limit_many`` checks a batch of keys in
one round trip, and ``reserve`` grants a connector's send slots for the next ~50 ms in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from dakghar.core.ratelimit import Decision
from dakghar.errors import DakgharError

# How far ahead one ``reserve`` call grants pacing slots (seconds).
PACING_HORIZON = 0.05


class Topic(enum.StrEnum):
    """The fan-out topics the gateway publishes on."""

    WAKEUP = "wakeup"  # payload: one ``pipeline.wakeup.pack`` datagram
    KILL_SWITCH = "kill-switch"
    ACCOUNT_PAUSE = "account-pause"
    KEY_REVOKED = "key-revoked"


class CoordinationUnavailable(DakgharError):
    """The shared coordinator (Redis) did not answer; the caller decides how to degrade."""

    code, status, title = "coordination_unavailable", 503, "Coordination unavailable"


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One key to check in ``limit_many``: ``cost`` requests at ``rate``/s with ``burst``."""

    key: str
    rate: float
    burst: int
    cost: int = 1


@dataclass(frozen=True, slots=True)
class Grant:
    """Pacing slots granted by one ``reserve`` call.

    ``send_at`` holds one ``time.monotonic()`` instant per granted slot, in order, none later than
    the horizon; empty when the fleet has used the window, and then ``retry_after`` says (in
    seconds) when the next slot opens.
    """

    send_at: list[float]
    retry_after: float = 0.0
    rate: float = 0.0  # the rate the slots were paced at (lower than asked after ``lower_rate``)

    @property
    def count(self) -> int:
        """How many slots were granted."""
        return len(self.send_at)


MessageCallback = Callable[[str, bytes], None]  # (topic, payload); must not block


class Subscription(Protocol):
    """A live subscription; ``close`` stops deliveries to its callback."""

    def close(self) -> None:
        """Stop delivering to this subscription's callback."""
        ...

    async def ready(self, timeout: float = 5.0) -> None:
        """Return once messages published from now on will reach the callback."""
        ...


class Limiter(Protocol):
    """Keyed GCRA limits shared by the fleet (the arithmetic of ``core.ratelimit.Gcra.hit``)."""

    async def limit(
        self, key: str, rate: float, burst: int, cost: int = 1, now: float | None = None
    ) -> Decision:
        """Account ``cost`` requests for ``key``; ``now`` (seconds) only for a shared test clock."""
        ...

    async def limit_many(self, checks: Sequence[LimitCheck]) -> list[Decision]:
        """``limit`` for each check, in order, in one round trip."""
        ...

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
        seconds: one already seen, or any while fewer than ``most`` are; ``add`` records it.
        Returns (admitted, seconds until a new member would be). The SMS-pumping check."""
        ...


class FanOut(Protocol):
    """At-most-once broadcast to every process of the fleet (this one included)."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send ``payload`` to every subscriber of ``topic``."""
        ...

    def subscribe(
        self,
        topics: Iterable[str],
        callback: MessageCallback,
        on_resync: Callable[[], None] | None = None,
    ) -> Subscription:
        """Call ``callback(topic, payload)`` for each message; ``on_resync()`` after a gap.

        A gap is a dropped connection during which messages may have been missed; a subscriber
        that keeps state from messages (kill switch, pauses) re-reads it from the store then.
        """
        ...


class Pacer(Protocol):
    """Fleet-wide pacing of each connector at its contracted rate.

    One GCRA cell per connector, shared by every process; each call takes the slots due
    within the next ``PACING_HORIZON``. Slots nobody reserved in time are gone (the carrier's
    rate is never exceeded to catch up), so a dispatcher reserves again well before its last
    granted slot, e.g. every quarter horizon while it has messages waiting.
    """

    async def reserve(self, connector: str, rate: float, burst: int, want: int) -> Grant:
        """Up to ``want`` send slots of ``connector`` within the next ``PACING_HORIZON``."""
        ...

    async def lower_rate(self, connector: str, rate: float, ttl: float) -> None:
        """Pace ``connector`` at no more than ``rate`` fleet-wide for ``ttl`` s (after a
        throttled answer); a lower rate already in force is kept."""
        ...


class BindLeases(Protocol):
    """Leases on a connector's numbered bind slots, so the fleet never opens more than allowed."""

    async def acquire_bind(self, connector: str, slots: int, owner: str, ttl: float) -> int | None:
        """A free slot index in ``range(slots)`` leased to ``owner`` for ``ttl`` s, else None.

        An owner already holding a slot of ``connector`` gets that slot back, renewed.
        """
        ...

    async def renew_bind(self, connector: str, slot: int, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease on ``slot`` to ``ttl`` s; False when it was lost."""
        ...

    async def release_bind(self, connector: str, slot: int, owner: str) -> bool:
        """Give ``slot`` back if ``owner`` still holds it; False when it did not."""
        ...


class Coordinator(Limiter, FanOut, Pacer, BindLeases, Protocol):
    """Everything the fleet coordinates, behind one object made by ``open_coordinator``."""

    @property
    def shared(self) -> bool:
        """True when other processes see the same state (Redis); False for in-process."""
        ...

    async def close(self) -> None:
        """Stop subscriptions and close connections."""
        ...


@contextlib.asynccontextmanager
async def messages(
    fanout: FanOut, topics: Iterable[str], *, maxsize: int = 10_000
) -> AsyncIterator[AsyncIterator[tuple[str, bytes]]]:
    """``async with messages(c, topics) as stream: async for topic, payload in stream: ...``

    Subscribed (and ready) on entry. A gap (see ``FanOut.subscribe``) is yielded as
    ``("", b"")``; when ``maxsize`` messages wait unread, newer ones are dropped.
    """
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize)

    def put(topic: str, payload: bytes) -> None:
        if not queue.full():
            queue.put_nowait((topic, payload))

    async def drain() -> AsyncIterator[tuple[str, bytes]]:
        while True:
            yield await queue.get()

    sub = fanout.subscribe(topics, put, lambda: put("", b""))
    try:
        await sub.ready()
        yield drain()
    finally:
        sub.close()
