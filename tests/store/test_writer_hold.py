"""The group-commit writer's time cap: a long batch of work does not hold SQLite's write lock,
nor an urgent operation of its own process, for its whole length."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dakghar.store.sql.writer import GroupCommitWriter


@contextmanager
def writer(path: Path, max_hold_ms: float | None) -> Iterator[GroupCommitWriter]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS done (what TEXT)")
        return conn

    w = GroupCommitWriter(connect, max_hold_ms=max_hold_ms, lock_path=f"{path}.write.lock")
    w.start()
    try:
        yield w
    finally:
        w.stop()


def step(order: list[str], what: str, seconds: float = 0.0) -> Callable[[Any], None]:
    def op(c: Any) -> None:
        time.sleep(seconds)  # work inside the transaction, holding the lock
        c.execute("INSERT INTO done VALUES (?)", (what,))
        order.append(what)

    return op


async def test_an_urgent_operation_goes_in_while_a_long_batch_is_under_way(
    tmp_path: Path,
) -> None:
    order: list[str] = []
    with writer(tmp_path / "w.db", max_hold_ms=5) as w:
        bulk = [w.submit(step(order, f"bulk{i}", 0.002)) for i in range(40)]  # 80 ms of work
        await asyncio.sleep(0.015)
        await asyncio.gather(w.submit(step(order, "urgent"), urgent=True), *bulk)
        commits = w.commits
    assert order.index("urgent") < 20, order
    assert commits >= 5


async def test_another_process_writes_while_a_long_batch_is_under_way(tmp_path: Path) -> None:
    order: list[str] = []
    with writer(tmp_path / "w.db", max_hold_ms=5) as busy, writer(tmp_path / "w.db", None) as api:
        bulk = [busy.submit(step(order, f"bulk{i}", 0.002)) for i in range(40)]
        await asyncio.sleep(0.015)
        await asyncio.gather(api.submit(step(order, "accept")), *bulk)
    assert order.index("accept") < 25, order  # not after the whole 80 ms


async def test_without_a_cap_a_batch_is_one_transaction(tmp_path: Path) -> None:
    order: list[str] = []
    with writer(tmp_path / "w.db", max_hold_ms=None) as w:
        await asyncio.gather(*(w.submit(step(order, f"op{i}")) for i in range(50)))
        assert w.commits <= 2


async def test_what_is_queued_while_waiting_for_another_process_joins_the_same_commit(
    tmp_path: Path,
) -> None:
    order: list[str] = []
    with writer(tmp_path / "w.db", max_hold_ms=5) as busy, writer(tmp_path / "w.db", None) as api:
        # The delivery side's transaction holds the lock for ~40 ms...
        long = busy.submit(step(order, "mark", 0.04))
        await asyncio.sleep(0.01)
        # ...while the API's accepts arrive one by one: the first waits for the lock, the rest
        # queue behind it, and all of them go in the one commit that follows.
        accepts = []
        for i in range(5):
            accepts.append(api.submit(step(order, f"accept{i}")))
            await asyncio.sleep(0.003)
        await asyncio.gather(long, *accepts)
        commits = api.commits
    assert order[0] == "mark" and sorted(order[1:]) == [f"accept{i}" for i in range(5)], order
    assert commits == 1
