"""Group commit: one writer thread per process owns the process's write connection.

Callers hand over small write operations (functions of a :class:`dakghar.store.sql.Conn`) and
await a future. The thread takes everything waiting in its queue, runs each operation inside its own
SAVEPOINT (so one failing operation does not undo the others), and commits the lot with one fsync.
Under load many API requests share one commit; with a single caller there is no added wait.

Several processes may write to the same file (the API and the delivery process of
``dakghar serve``, the CLI). SQLite's own busy handler waits for its lock by sleeping in steps
of up to 100 ms, which turned every contended commit into a stall of several milliseconds. So
each writer also takes an exclusive ``flock`` on ``<database>.write.lock`` around its
transaction: the kernel wakes a waiting writer the moment the other commits, and SQLite's lock
is then always free when asked for.

PostgreSQL lets writers of many processes run at once, so it takes no file lock; an operation
that loses a deadlock to another process's transaction (``retryable``) is rolled back to its
savepoint and run again, and a connection the server dropped is replaced before the next batch.

On a server each statement is a round trip, and a savepoint costs two more per operation. So
with ``optimistic`` the batch first runs without savepoints; if any operation fails, the whole
transaction is rolled back and the batch runs again the careful way, a savepoint per operation
(operations are already run again after a lost deadlock, so running one twice is safe). Failing
operations are rare; the common batch saves two statements per operation. A connection that
offers ``pipelined()`` (psycopg's pipeline mode) runs that first pass without waiting for results
nobody reads: the writes of a batch go out in one round trip, and an error surfacing late does
no harm, since any error sends the whole batch to the careful second pass.

An operation may also offer ``together(conn, ops)``: the optimistic pass then runs every
operation of that kind in the batch at once, where the first of them stands, and takes an
outcome, a result or a refusal, for each (the accepts of many requests share one read of their
accounts and one insert). The careful pass (SQLite's only one) runs each run of consecutive
operations of one kind together inside one savepoint, and one at a time, a savepoint each, if
that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from dakghar.store.sql import Conn

T = TypeVar("T")
WriteOp = Callable[[Conn], Any]
RETRIES = 3  # runs of an operation that keeps losing deadlocks before its error is returned
# A batch that waited longer than this for another process's transaction takes in what was
# queued meanwhile (an API's accepts wait on the delivery side's writes, and back).
LATE_JOIN_WAIT = 0.0002
# (operation, its future, the caller's loop, urgent)
_Item = tuple[WriteOp, "asyncio.Future[Any]", asyncio.AbstractEventLoop, bool]


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class GroupCommitWriter:
    """The writer thread and its queue."""

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        max_batch: int = 2000,
        max_wait_ms: float = 0.0,
        lock_path: str | None = None,
        count_statements: bool = False,
        begin: str = "BEGIN IMMEDIATE",
        retryable: Callable[[BaseException], bool] | None = None,
        broken: Callable[[Any], bool] | None = None,
        name: str = "dakghar-sqlite-writer",
        optimistic: bool = False,
        max_hold_ms: float | None = None,
    ) -> None:
        self._optimistic = optimistic
        self._max_hold = None if max_hold_ms is None else max_hold_ms / 1000.0
        self._connect = connect
        self._begin = begin
        self._retryable = retryable
        self._broken = broken
        self._lock_path = lock_path
        self._lock_fd: int | None = None
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.commits = 0
        self.operations = 0
        self.lock_wait_seconds = 0.0  # waiting for another process's transaction to end
        self.busy_seconds = 0.0  # inside transactions (holding the write lock)
        # Statements run, by first word (SELECT, INSERT, ...): for bench/store_ops.py; off by
        # default, since the trace callback costs a Python call per statement.
        self.statements: dict[str, int] | None = {} if count_statements else None

    def start(self) -> None:
        """Start the thread and wait until its connection is open."""
        self._thread.start()
        self._ready.wait()
        if self._startup_error:
            raise self._startup_error

    def submit(self, op: Callable[[Conn], T], *, urgent: bool = False) -> asyncio.Future[T]:
        """Queue ``op``; the returned future resolves after its batch has committed. Urgent
        operations found in a batch are committed first, in a transaction of their own, so
        they wait for the transaction in progress but not for the rest of theirs."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((op, fut, loop, urgent))
        return fut

    def stop(self) -> None:
        """Finish everything queued, then close the connection."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        batch = [first]
        stopping = False
        deadline = time.monotonic() + self._max_wait
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is None:
                stopping = True
                break
            batch.append(item)
        return batch, stopping

    def _run(self) -> None:
        try:
            conn = self._connect()
            if self.statements is not None:
                conn.set_trace_callback(self._count)
            if self._lock_path is not None:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    break
                batch, stopping = self._gather(first)
                if self._broken is not None and self._broken(conn):
                    conn = self._reconnect(conn)
                while batch:
                    urgent = [item for item in batch if item[3]]
                    if urgent and len(urgent) < len(batch):
                        batch = self._commit(conn, urgent) + [i for i in batch if not i[3]]
                        continue
                    batch = self._commit(conn, batch)
                    if batch:
                        # The transaction ran for max_hold_ms: a waiting process (an API's
                        # accept) gets the moment it needs to take the lock, and an urgent
                        # operation queued meanwhile (an OTP's claim) goes before the rest.
                        time.sleep(0.0005)
                        more, stop = self._take_queued()
                        batch += more
                        stopping = stopping or stop
                if stopping:
                    break
        finally:
            conn.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)

    def _reconnect(self, old: Any) -> Any:
        with contextlib.suppress(Exception):
            old.close()
        while True:
            try:
                conn = self._connect()
            except Exception:  # the server is still away: the batch waits, nothing is lost
                time.sleep(0.5)
                continue
            if self.statements is not None:
                conn.set_trace_callback(self._count)
            return conn

    def _count(self, sql: str) -> None:
        counts = self.statements
        if counts is not None:
            word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
            counts[word] = counts.get(word, 0) + 1

    def _take_queued(self) -> tuple[list[_Item], bool]:
        """What is queued now, without waiting; and whether stop() was asked for."""
        items: list[_Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items, False
            if item is None:
                return items, True
            items.append(item)

    def _join_late(self, batch: list[_Item]) -> list[_Item]:
        """``batch`` with what was queued while it waited for another process's transaction:
        those operations would otherwise wait for that process's next one too. Urgent ones go
        first; a stop() asked for meanwhile is queued again for the loop to see."""
        more, stop = self._take_queued()
        if stop:
            self._queue.put(None)
        if not more:
            return batch
        return [i for i in more if i[3]] + batch + [i for i in more if not i[3]]

    def _commit(self, conn: Any, batch: list[_Item]) -> list[_Item]:
        """Run ``batch`` in one transaction and settle its futures; what ``max_hold_ms`` left
        for the next transaction is returned."""
        t0 = t1 = time.perf_counter()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # waits without the GIL
            t1 = time.perf_counter()
            if t1 - t0 > LATE_JOIN_WAIT:
                batch = self._join_late(batch)
        try:
            outcomes = self._transaction(conn, batch, t1)
        finally:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            t2 = time.perf_counter()
            self.lock_wait_seconds += t1 - t0
            self.busy_seconds += t2 - t1
        self.commits += 1
        self.operations += len(outcomes)
        done, rest = batch[: len(outcomes)], batch[len(outcomes) :]
        for (_op, fut, loop, _urgent), (result, error) in zip(done, outcomes, strict=True):
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                loop.call_soon_threadsafe(_settle, fut, result, error)
        return rest

    def _run_next(
        self, conn: Any, batch: list[_Item], i: int
    ) -> list[tuple[Any, BaseException | None]]:
        """Outcomes of the operation at ``i`` of ``batch``; with ``together``, of the run of
        operations of its kind that starts there, at once in one savepoint (one at a time
        after all if that fails)."""
        op = batch[i][0]
        together = getattr(op, "together", None)
        end = i + 1
        while together is not None and end < len(batch):
            if getattr(batch[end][0], "together", None) is not together:
                break
            end += 1
        if end - i == 1:
            return [self._run_op(conn, op)]
        assert together is not None  # a run of more than one shares it
        ops = [item[0] for item in batch[i:end]]
        conn.execute("SAVEPOINT kind")
        try:
            outcomes = list(together(conn, ops))
        except Exception:
            conn.execute("ROLLBACK TO kind")
            conn.execute("RELEASE kind")
            return [self._run_op(conn, one) for one in ops]
        conn.execute("RELEASE kind")
        return outcomes

    def _run_op(self, conn: Any, op: WriteOp) -> tuple[Any, BaseException | None]:
        for run in range(RETRIES):
            conn.execute("SAVEPOINT op")
            try:
                result = op(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                if run + 1 < RETRIES and self._retryable is not None and self._retryable(exc):
                    continue
                return None, exc
            conn.execute("RELEASE op")
            return result, None
        raise AssertionError("unreachable")

    def _transaction(
        self, conn: Any, batch: list[_Item], started: float
    ) -> list[tuple[Any, BaseException | None]]:
        """Run the operations of ``batch`` in one transaction: an outcome for each one run.
        With ``max_hold_ms`` (the careful pass), operations stop being added once that long
        has passed since ``started``; at least one runs."""
        if self._optimistic:
            done = self._without_savepoints(conn, batch)
            if done is not None:
                return done
        outcomes: list[tuple[Any, BaseException | None]] = []
        until = float("inf") if self._max_hold is None else started + self._max_hold
        try:
            conn.execute(self._begin)
            while len(outcomes) < len(batch):
                outcomes += self._run_next(conn, batch, len(outcomes))
                if time.perf_counter() >= until:
                    break
            conn.execute("COMMIT")
        except Exception as exc:  # the commit itself failed: nothing run in it is durable
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            outcomes = [(None, exc)] * (len(outcomes) or len(batch))
        return outcomes

    def _without_savepoints(
        self, conn: Any, batch: list[_Item]
    ) -> list[tuple[Any, BaseException | None]] | None:
        """The batch in one transaction without savepoints; None (rolled back) if any operation
        failed, for the caller to run the batch again with a savepoint per operation."""
        outcomes: list[tuple[Any, BaseException | None] | None] = [None] * len(batch)
        kind_of = [getattr(op, "together", None) for op, _fut, _loop, _urgent in batch]
        kinds: dict[Any, list[int]] = {}  # ops that run together, by kind
        for i, together in enumerate(kind_of):
            if together is not None:
                kinds.setdefault(together, []).append(i)
        pipelined = getattr(conn, "pipelined", None)  # PostgreSQL: no wait for unread results
        try:
            with pipelined() if pipelined is not None else contextlib.nullcontext():
                conn.execute(self._begin)
                for i, (op, _fut, _loop, _urgent) in enumerate(batch):
                    if outcomes[i] is not None:
                        continue
                    together = kind_of[i]
                    if together is None:
                        outcomes[i] = (op(conn), None)
                        continue
                    mine = kinds[together]  # the whole kind runs here, at its first op
                    for j, outcome in zip(
                        mine, together(conn, [batch[j][0] for j in mine]), strict=True
                    ):
                        outcomes[j] = outcome
        except Exception:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            return None
        try:
            conn.execute("COMMIT")
        except Exception as exc:  # nothing in the batch is durable
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            return [(None, exc)] * len(batch)
        return cast(list[tuple[Any, BaseException | None]], outcomes)  # every one is set
