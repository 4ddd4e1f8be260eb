"""Per-connector throttling: never more than the carrier's messages per second or window.

A carrier contract says two things: a rate (e.g. 100 submits/s) and a window (how many requests
may await an answer). ``AsyncPacer.slot()`` enforces both for the dispatcher: an in-flight slot
from a FIFO semaphore (fair, cancellation-safe), then a send time from :class:`RateSchedule`, a
GCRA virtual schedule that spaces sends smoothly at the rate with a small burst tolerance, so no
one-second window ever holds more than ``rate + burst`` sends, and, unlike a polling loop, costs
one sleep per send. ``slow_down`` lowers the rate for a while when the carrier answers
"throttled"; it climbs back by itself.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

from dakghar.observability.logging import get_logger

log = get_logger("dakghar.pacing")
MIN_RATE = 1.0  # slow_down never goes below one message per second


class RateSchedule:
    """Pure arithmetic of the pacer: when may the next send go (GCRA virtual scheduling)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = max(1.0, rate * 0.02) if burst is None else max(1.0, burst)
        self._tat = 0.0  # theoretical arrival time of the next send
        self._factor = 1.0
        self._until = 0.0

    def effective_rate(self, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        if now >= self._until:
            self._factor = 1.0
        return max(MIN_RATE, self.rate * self._factor) if self._factor < 1 else self.rate

    def reserve(self, now: float) -> float:
        """Book the next send; returns how long to wait (0 = now). Unlimited when rate <= 0."""
        rate = self.effective_rate(now)
        if rate <= 0:
            return 0.0
        interval = 1.0 / rate
        tolerance = (self.burst - 1.0) * interval
        at = max(now, self._tat - tolerance)
        self._tat = max(self._tat, now) + interval
        return at - now

    def release(self, now: float) -> None:
        """Give back the last booking (its waiter was cancelled before sending)."""
        rate = self.effective_rate(now)
        if rate > 0:
            self._tat = max(now, self._tat - 1.0 / rate)

    def slow_down(self, now: float, factor: float, duration: float) -> None:
        """Multiply the rate by ``factor`` (< 1) for ``duration`` s; repeated calls compound."""
        if now >= self._until:
            self._factor = 1.0
        self._factor = max(self._factor * factor, MIN_RATE / self.rate if self.rate > 0 else 0.0)
        self._until = now + duration


class PriorityWindow:
    """A counting semaphore whose waiters are served by priority (lower first), then in order.

    The window of a connector is shared by every lane: an OTP that finds it full must be the
    next to enter, not wait behind every promotional message already queued for it. A waiter
    cancelled after it was let in hands its place on, so no slot is ever lost.
    """

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def acquire(self, priority: int = 0) -> None:
        """Take a slot, waiting behind more urgent and earlier waiters."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # let in just as it was cancelled: pass the slot on
            raise

    def release(self) -> None:
        """Give a slot back: to the most urgent waiter, else to the pool."""
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self.free += 1


class AsyncPacer:
    """``async with pacer.slot():`` waits for an in-flight slot and then for the rate."""

    def __init__(self, rate: float, max_in_flight: int, burst: float | None = None) -> None:
        self.schedule = RateSchedule(rate, burst)
        self.max_in_flight = max(1, max_in_flight)
        self._window = PriorityWindow(self.max_in_flight)
        self.in_flight = 0
        self.waiting = 0

    def slot(self, priority: int = 0) -> _Slot:
        """An in-flight slot (``priority``: the message's lane; OTP first), then a send time."""
        return _Slot(self, priority)

    async def _enter(self, priority: int) -> None:
        self.waiting += 1
        try:
            await self._window.acquire(priority)
        finally:
            self.waiting -= 1
        try:
            await self._await_send_time()
        except BaseException:
            self._window.release()
            raise
        self.in_flight += 1

    def _exit(self) -> None:
        self.in_flight -= 1
        self._window.release()

    async def _await_send_time(self) -> None:
        """Wait for this process's next send time at the rate (a cancelled wait gives it back)."""
        delay = self.schedule.reserve(time.monotonic())
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self.schedule.release(time.monotonic())
                raise

    def slow_down(self, now: float, factor: float, duration: float) -> None:
        """The carrier said "throttled": send more slowly for ``duration`` seconds."""
        self.schedule.slow_down(now, factor, duration)

    def state(self) -> dict[str, Any]:
        return {
            "rate": self.schedule.rate,
            "effective_rate": self.schedule.effective_rate(time.monotonic()),
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "max_in_flight": self.max_in_flight,
        }


class FleetPacer(AsyncPacer):
    """An :class:`AsyncPacer` whose rate is the whole fleet's: send times come from the shared
    pacer (``coord.Pacer``, one GCRA cell per connector in Redis) in batches of the next
    ``PACING_HORIZON``, so every dispatcher together keeps the carrier's contracted rate. The
    in-flight window stays per bind, here.

    Slots a batch granted but this process did not use in time are dropped, never spent late
    in a burst. When the shared pacer does not answer, each dispatcher paces itself at the
    contracted rate divided by the dispatchers alive (``peers``: the count the store's register
    gave at the last heartbeat), so the fleet together stays within the contract, and asks the
    shared pacer again after ``AWAY_S``. A dispatcher that joins during the outage is counted
    at the others' next heartbeat (2 s).
    """

    AWAY_S = 5.0

    def __init__(
        self,
        name: str,
        rate: float,
        max_in_flight: int,
        pacer: Any,  # coord.base.Pacer (kept untyped: pipeline does not import coord)
        burst: float | None = None,
        peers: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(rate, max_in_flight, burst)
        self.name = name
        self._shared = pacer
        self._peers = peers or (lambda: 1)
        self._alone = RateSchedule(rate, burst)  # this process's share, while the pacer is away
        self._away_until = 0.0
        self.unshared_sends = 0
        self._slots: list[float] = []  # granted send times, monotonic, ascending
        self._refill: asyncio.Task[None] | None = None
        self.reservations = 0
        self.dropped = 0

    async def _next_send_at(self) -> float | None:
        """The next granted send time; None while the shared pacer is away."""
        while True:
            now = time.monotonic()
            if now < self._away_until:
                return None
            stale = 0
            while self._slots and self._slots[0] < now - 0.05:
                self._slots.pop(0)
                stale += 1
            self.dropped += stale
            if self._slots:
                return self._slots.pop(0)
            if self._refill is None or self._refill.done():
                self._refill = asyncio.create_task(self._reserve())
            await asyncio.shield(self._refill)

    async def _reserve(self) -> None:
        want = max(1, self.waiting + 1, int(self.schedule.rate * 0.05) + 1)
        try:
            grant = await self._shared.reserve(
                self.name, self.schedule.effective_rate(time.monotonic()),
                max(1, int(self.schedule.burst)), want,
            )  # fmt: skip
        except Exception as exc:  # the shared pacer is away: each takes its share for a while
            if time.monotonic() >= self._away_until:
                log.warning("fleet pacer unavailable; pacing at this dispatcher's share",
                            connector=self.name, error=type(exc).__name__,
                            peers=self._peers())  # fmt: skip
            self._away_until = time.monotonic() + self.AWAY_S
            return
        self.reservations += 1
        if grant.count:
            self._slots.extend(grant.send_at)
        else:
            await asyncio.sleep(max(0.001, min(grant.retry_after, 0.05)))

    async def _await_send_time(self) -> None:
        """Wait for a send time the fleet's pacer granted (unlimited: none to wait for)."""
        if self.schedule.rate <= 0:
            return
        at = await self._next_send_at()
        now = time.monotonic()
        if at is None:  # the pacer is away: this process's share of the contract
            peers = max(1, self._peers())
            self._alone.rate = self.schedule.effective_rate(now) / peers
            self._alone.burst = max(1.0, self.schedule.burst / peers)
            self.unshared_sends += 1
            delay = self._alone.reserve(now)
        else:
            delay = at - now
        if delay > 0:
            await asyncio.sleep(delay)

    def slow_down(self, now: float, factor: float, duration: float) -> None:
        """A throttled answer lowers the rate of the whole fleet, not only this process's."""
        super().slow_down(now, factor, duration)
        rate = self.schedule.effective_rate(now)
        task = asyncio.get_running_loop().create_task(
            self._shared.lower_rate(self.name, rate, duration)
        )
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def state(self) -> dict[str, Any]:
        return {**super().state(), "fleet": True, "reservations": self.reservations,
                "dropped_slots": self.dropped, "unshared_sends": self.unshared_sends,
                "shared_pacer_away": time.monotonic() < self._away_until}  # fmt: skip


class _Slot:
    """``AsyncPacer.slot()``: a class, not ``contextlib.asynccontextmanager``, whose generator
    and wrapper cost every message a few microseconds more."""

    __slots__ = ("_pacer", "_priority")

    def __init__(self, pacer: AsyncPacer, priority: int) -> None:
        self._pacer, self._priority = pacer, priority

    async def __aenter__(self) -> None:
        await self._pacer._enter(self._priority)

    async def __aexit__(self, *exc_info: object) -> None:
        self._pacer._exit()
