"""Two stores on one database, as two processes of a fleet: no double spend, no double claim.

On SQLite the processes take turns on the write lock; on PostgreSQL their writers run at once,
and row locks (``FOR UPDATE``) and ``SKIP LOCKED`` claims keep them apart.
"""

from __future__ import annotations

import asyncio

from dakghar.store.base import now_ms
from dakghar.store.sql.core import SqlStore
from tests.store.conftest import twin
from tests.store.test_sqlite_store import row


async def test_two_processes_accepting_for_one_account_never_overdraw(any_store: SqlStore) -> None:
    other = twin(any_store)
    await other.open()
    try:
        acc = await any_store.create_account(name="a", balance_milli=200_000)
        outcomes = await asyncio.gather(
            *(
                (any_store if i % 2 else other).accept_messages(acc.id, [row(acc.id)], charge=True)
                for i in range(400)
            )
        )
        accepted = sum(len(o.accepted) for o in outcomes)
        assert accepted == 200
        fresh = await any_store.get_account(acc.id)
        assert fresh is not None and fresh.balance_milli == 0
    finally:
        await other.close()


async def test_two_dispatchers_never_claim_the_same_message(any_store: SqlStore) -> None:
    other = twin(any_store)
    await other.open()
    try:
        acc = await any_store.create_account(name="a", balance_milli=10**9)
        rows = [row(acc.id) for _ in range(600)]
        await any_store.accept_messages(acc.id, rows, charge=False)
        seen: list[str] = []

        async def drain(store: SqlStore) -> None:
            while True:
                got, _dry = await store.claim(1, [acc.id], 25, lease_ms=60_000)
                if not got:
                    return
                seen.extend(m.id for m in got)

        await asyncio.gather(*(drain(s) for s in (any_store, other, any_store, other)))
        assert len(seen) == 600 and len(set(seen)) == 600
    finally:
        await other.close()


async def test_a_report_and_a_cancel_racing_across_processes_leave_one_outcome(
    any_store: SqlStore,
) -> None:
    other = twin(any_store)
    await other.open()
    try:
        acc = await any_store.create_account(name="a", balance_milli=10_000)
        m = row(acc.id)
        await any_store.accept_messages(acc.id, [m], charge=True)
        results = await asyncio.gather(
            any_store.transition(m.id, "failed", detail="one"),
            other.transition(m.id, "canceled", detail="two"),
            return_exceptions=True,
        )
        moved = [r for r in results if r is not None and not isinstance(r, BaseException)]
        assert len(moved) == 1  # a final status is never left for another
        final = await any_store.get_message(acc.id, m.id, with_events=True)
        assert final is not None and final.events is not None
        assert [e.status for e in final.events].count(final.status) == 1
        assert final.updated_at <= now_ms()
    finally:
        await other.close()
