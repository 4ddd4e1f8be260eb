"""Many callers, one store write: a coalescer for the pipeline's per-message results.

Each message's carrier acceptance, delivery report and webhook outcome used to be a write
operation of its own: one savepoint, one future and one thread hop each, through the single
writer. A :class:`Coalescer` gathers what many tasks hand it while the previous batch is being
written, and writes it as one call of ``flush`` (``Store.mark_sent_many``, ``report_many``,
``webhook_results``). By default nothing waits on a timer: with one caller a batch is one item and
goes at once; under load, batches grow by themselves to what arrived during one write. Results
that hold nobody up may ``linger`` for company (``BUSY_GAP``).

Each caller still awaits its own item's result, so durability is unchanged: a carrier's receipt
is acknowledged, or a slot counted done, only after the commit that records it. If a batch
fails, its items are retried one by one, so one bad item fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from dakghar.observability.logging import get_logger

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")
log = get_logger("dakghar.batching")
# While a process has work in hand, its claims of more work (the dispatcher's bulk lanes, the
# webhook sender's outbox) are at least this far apart, and its results that nobody waits on
# (``Coalescer(linger=...)``) wait this long for company. Claiming on every wake-up took a few
# rows at a time, and every later write was as small: with two dispatchers sharing the traffic
# each batch was a fifth of one dispatcher's, at five times the statements per message. Idle,
# a process claims at once; the OTP lane and delivery receipts never wait.
BUSY_GAP = 0.2


class Coalescer(Generic[I, R]):
    """Gathers items into batches for ``flush(items) -> results`` (one result per item)."""

    def __init__(
        self,
        flush: Callable[[list[I]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 1000,
        linger: float = 0.0,
    ) -> None:
        self._flush = flush
        self.max_batch = max_batch
        # Seconds a batch waits for more items before it is written: only for results whose
        # callers do not hold anything up while they wait (a freed window slot, a webhook sent).
        self.linger = linger
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        # The loop it serves, kept: on Python 3.11 each asyncio.get_running_loop() is a getpid
        # system call, and every message passes here two or three times.
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.items = 0

    def submit(self, item: I) -> asyncio.Future[R]:
        """Queue ``item``; the future resolves with its result once its batch is written."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="dakghar-coalescer")
        return fut

    @property
    def backlog(self) -> int:
        """Items waiting for the next batch."""
        return len(self._pending)

    async def __call__(self, item: I) -> R:
        """Submit ``item`` and wait for its result."""
        return await self.submit(item)

    async def _drain(self) -> None:
        while self._pending:
            if self.linger and len(self._pending) < self.max_batch:
                await asyncio.sleep(self.linger)
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                results = await self._flush([item for item, _ in batch])
                if len(results) != len(batch):
                    raise ValueError(f"{len(results)} results for a batch of {len(batch)}")
            except Exception as exc:
                if len(batch) == 1:
                    fail(batch, exc)
                    continue
                log.warning("batch write failed; retrying its items one by one", size=len(batch))
                for one in batch:
                    try:
                        (result,) = await self._flush([one[0]])  # exactly one, or ValueError
                    except Exception as one_exc:
                        fail([one], one_exc)
                    else:
                        settle(one[1], result)
                continue
            self.batches += 1
            self.items += len(batch)
            for (_item, fut), result in zip(batch, results, strict=True):  # lengths checked
                settle(fut, result)

    async def close(self) -> None:
        """Wait until everything submitted has been written."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


def settle(fut: asyncio.Future[R], result: R) -> None:
    """Resolve ``fut`` unless its waiter has gone."""
    if not fut.done():
        fut.set_result(result)


def fail(batch: Sequence[tuple[object, asyncio.Future[R]]], exc: BaseException) -> None:
    """Fail every future of ``batch`` with ``exc``."""
    for _item, fut in batch:
        if not fut.done():
            fut.set_exception(exc)
