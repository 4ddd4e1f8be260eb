"""The in-process coordinator: this process is the whole fleet.

Used when ``DAKGHAR_QUEUE_URL`` is unset. Limits wrap ``core.ratelimit.Gcra`` on the monotonic
clock, fan-out reaches this process's own subscribers, pacing honours the rate locally only, and
bind leases are granted up to the slot count with the same TTL rules as the Redis leases. With
several processes and no Redis, giving each its 1/N share of a rate is the caller's job.
``pace`` is the pacing arithmetic that ``redis.py``'s Lua script repeats.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

from dakghar.coord.base import PACING_HORIZON, Grant, LimitCheck, MessageCallback
from dakghar.core.ratelimit import Decision, Gcra
from dakghar.observability.logging import get_logger

log = get_logger("dakghar.coord")


def pace(
    tat: float, now: float, rate: float, burst: int, want: int, horizon: float
) -> tuple[float, list[float], float]:
    """GCRA slots for up to ``want`` sends due by ``now + horizon``.

    Returns the new theoretical arrival time, each granted slot's offset from ``now`` and, when
    none was granted, how long until a call would be granted one.
    """
    emission = 1.0 / rate
    tolerance = emission * (burst - 1)
    tat = max(tat, now)
    offsets: list[float] = []
    while len(offsets) < want:
        allow_at = tat - tolerance
        if allow_at > now + horizon + 1e-9:  # a slot due at the horizon's edge, despite floats
            break
        offsets.append(max(0.0, allow_at - now))
        tat += emission
    retry_after = 0.0
    if not offsets and want > 0:
        retry_after = tat - tolerance - now - horizon
    return tat, offsets, retry_after


class _LocalSubscription:
    def __init__(self, owner: LocalCoordinator, topics: frozenset[str], cb: MessageCallback):
        self.owner = owner
        self.topics = topics
        self.callback = cb

    def close(self) -> None:
        """Stop delivering to this subscription's callback."""
        self.owner._subscriptions.discard(self)

    async def ready(self, timeout: float = 5.0) -> None:
        """In-process subscriptions are live at once."""


class LocalCoordinator:
    """``Coordinator`` for one process, with no shared state."""

    shared = False

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._max_keys = max_keys
        self._limiters: dict[tuple[float, int], Gcra] = {}
        self._subscriptions: set[_LocalSubscription] = set()
        self._pacing: dict[str, float] = {}
        self._lowered: dict[str, tuple[float, float]] = {}  # connector -> (rate, until)
        self._leases: dict[tuple[str, int], tuple[str, float]] = {}
        self._distinct: dict[str, dict[str, float]] = {}

    # -- limits -------------------------------------------------------------------------------

    async def limit(
        self, key: str, rate: float, burst: int, cost: int = 1, now: float | None = None
    ) -> Decision:
        """Account ``cost`` requests for ``key``; ``now`` (seconds) only for a shared test clock."""
        return self._hit(key, rate, burst, cost, time.monotonic() if now is None else now)

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
        """Admit ``member`` among the distinct members of ``key`` in the last ``window`` s."""
        now = time.monotonic() if now is None else now
        seen = self._distinct.setdefault(key, {})
        for m, at in list(seen.items()):
            if at <= now - window:
                del seen[m]
        if member not in seen and len(seen) >= most:
            return False, min(seen.values()) + window - now
        if add:
            seen[member] = now
            if len(self._distinct) > self._max_keys:
                self._distinct = {k: v for k, v in self._distinct.items() if v}
        elif not seen:
            del self._distinct[key]
        return True, 0.0

    async def limit_many(self, checks: Sequence[LimitCheck]) -> list[Decision]:
        """``limit`` for each check, in order."""
        now = time.monotonic()
        return [self._hit(c.key, c.rate, c.burst, c.cost, now) for c in checks]

    def _hit(self, key: str, rate: float, burst: int, cost: int, now: float) -> Decision:
        gcra = self._limiters.get((rate, burst))
        if gcra is None:
            gcra = self._limiters[(rate, burst)] = Gcra(rate, burst, max_keys=self._max_keys)
        return gcra.hit(key, now, cost)

    # -- fan-out ------------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes) -> None:
        """Deliver ``payload`` to this process's subscribers of ``topic`` (on the next turn)."""
        loop = asyncio.get_running_loop()
        for sub in list(self._subscriptions):
            if topic in sub.topics:
                loop.call_soon(_deliver, sub, topic, payload)

    def subscribe(
        self,
        topics: Iterable[str],
        callback: MessageCallback,
        on_resync: Callable[[], None] | None = None,
    ) -> _LocalSubscription:
        """Call ``callback(topic, payload)`` for each message (in-process fan-out has no gaps)."""
        sub = _LocalSubscription(self, frozenset(topics), callback)
        self._subscriptions.add(sub)
        return sub

    # -- pacing -------------------------------------------------------------------------------

    async def reserve(self, connector: str, rate: float, burst: int, want: int) -> Grant:
        """Up to ``want`` send slots of ``connector`` within the next ``PACING_HORIZON``."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        now = time.monotonic()
        lowered = self._lowered.get(connector)
        if lowered is not None and lowered[1] > now:
            rate = min(rate, lowered[0])
        tat, offsets, retry_after = pace(
            self._pacing.get(connector, now), now, rate, burst, want, PACING_HORIZON
        )
        self._pacing[connector] = tat
        return Grant([now + o for o in offsets], retry_after, rate)

    async def lower_rate(self, connector: str, rate: float, ttl: float) -> None:
        """Pace ``connector`` at no more than ``rate`` for ``ttl`` s."""
        if rate <= 0:
            raise ValueError("rate must be > 0")
        now = time.monotonic()
        current = self._lowered.get(connector)
        if current is None or current[1] <= now or current[0] > rate:
            self._lowered[connector] = (rate, now + ttl)

    # -- bind leases --------------------------------------------------------------------------

    async def acquire_bind(self, connector: str, slots: int, owner: str, ttl: float) -> int | None:
        """A free slot index in ``range(slots)`` leased to ``owner`` for ``ttl`` s, else None."""
        now = time.monotonic()
        free: int | None = None
        for slot in range(slots):
            held = self._leases.get((connector, slot))
            if held is not None and held[1] > now:
                if held[0] == owner:
                    self._leases[(connector, slot)] = (owner, now + ttl)
                    return slot
            elif free is None:
                free = slot
        if free is not None:
            self._leases[(connector, free)] = (owner, now + ttl)
        return free

    async def renew_bind(self, connector: str, slot: int, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease on ``slot`` to ``ttl`` s (a free slot is taken again);
        False when another holds it."""
        held = self._leases.get((connector, slot))
        now = time.monotonic()
        if held is not None and held[0] != owner and held[1] > now:
            return False  # another holds it now
        self._leases[(connector, slot)] = (owner, now + ttl)  # ours, or free: taken again
        return True

    async def release_bind(self, connector: str, slot: int, owner: str) -> bool:
        """Give ``slot`` back if ``owner`` still holds it; False when it did not."""
        held = self._leases.get((connector, slot))
        if held is None or held[0] != owner or held[1] <= time.monotonic():
            return False
        del self._leases[(connector, slot)]
        return True

    async def close(self) -> None:
        """Drop every subscription."""
        self._subscriptions.clear()


def _deliver(sub: _LocalSubscription, topic: str, payload: bytes) -> None:
    if sub not in sub.owner._subscriptions:
        return
    try:
        sub.callback(topic, payload)
    except Exception:  # one subscriber's bug must not stop the others
        log.exception("fan-out callback failed", topic=topic)
