"""Wake-up hints over fan-out: the fleet's twin of ``pipeline.wakeup``'s datagram socket.

``HintPublisher`` is an accept listener like ``wakeup.HintSender``: accepts completing in one
turn of the event loop share one publish of ``wakeup.pack`` datagrams on ``Topic.WAKEUP``, and
a publish that fails is only counted (the dispatchers' queue scan finds those messages).
``listen_hints`` hands each received datagram's hints to a dispatcher, as ``wakeup.listen``
does. On a fan-out gap the dispatcher loses nothing it would not find in its next scan, so no
resync is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from dakghar.coord.base import CoordinationUnavailable, FanOut, Subscription, Topic
from dakghar.pipeline import wakeup
from dakghar.store.base import MessageRow


class HintPublisher:
    """An accept listener that publishes wake-up hints; never blocks or fails an accept."""

    def __init__(self, fanout: FanOut) -> None:
        self.fanout = fanout
        self.sent = 0
        self.dropped = 0
        self._pending: dict[tuple[int, str], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, rows: Sequence[MessageRow]) -> None:
        first = not self._pending
        wakeup.collect(rows, self._pending)
        if first and self._pending:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Publish what has been collected (in a task of its own)."""
        pending, self._pending = self._pending, {}
        datagrams = wakeup.pack(pending)
        if datagrams:
            task = asyncio.get_running_loop().create_task(self._publish(datagrams))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _publish(self, datagrams: list[bytes]) -> None:
        for datagram in datagrams:
            try:
                await self.fanout.publish(Topic.WAKEUP, datagram)
                self.sent += 1
            except CoordinationUnavailable:
                self.dropped += 1

    async def close(self) -> None:
        """Wait for publishes under way."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)


def listen_hints(fanout: FanOut, on_hints: Callable[[list[wakeup.Hint]], None]) -> Subscription:
    """Call ``on_hints`` with the hints of each wake-up published anywhere in the fleet."""

    def received(topic: str, payload: bytes) -> None:
        hints = wakeup.decode(payload)
        if hints:
            on_hints(hints)

    return fanout.subscribe([Topic.WAKEUP], received)
