"""Accepts of many requests committed together give each request what it alone would get.

On PostgreSQL the writer runs a batch's accepts at once (one read of the accounts, one insert);
these tests queue many at a time so they share a batch, and compare every outcome with the
same requests taken one by one.
"""

from __future__ import annotations

import asyncio

import pytest

from dakghar.errors import SendingPaused
from dakghar.store.sql.core import AccountGone, SqlStore
from tests.store.test_sqlite_store import row


async def test_a_batch_of_accepts_spends_each_balance_in_request_order(any_store: SqlStore) -> None:
    store = any_store
    poor = await store.create_account(name="poor", balance_milli=3_000)  # three messages
    rich = await store.create_account(name="rich", balance_milli=100_000)
    free = await store.create_account(name="free", balance_milli=0)
    paused = await store.create_account(name="paused", balance_milli=10_000, sending_paused=True)
    requests = [
        (poor.id, 1, True),
        (rich.id, 2, True),
        (poor.id, 2, True),  # both fit: 3,000 -> 0
        (free.id, 3, False),  # not charged: accepted without credit
        (poor.id, 1, True),  # nothing left
        (paused.id, 1, True),
        ("acc_gone", 1, True),
        (rich.id, 1, True),
    ]
    commits = store.writer.commits
    results = await asyncio.gather(
        *(
            store.accept_messages(acc, [row(acc) for _ in range(n)], charge=charge)
            for acc, n, charge in requests
        ),
        return_exceptions=True,
    )
    assert store.writer.commits - commits < len(requests)  # they shared a commit
    accepted = [len(r.accepted) if not isinstance(r, BaseException) else None for r in results]
    assert accepted[:5] == [1, 2, 2, 3, 0]
    assert results[4].no_credit == [0]  # type: ignore[union-attr]
    assert isinstance(results[5], SendingPaused)
    assert isinstance(results[6], AccountGone)
    assert accepted[7] == 1
    assert [r.balance_milli for r in results[:3]] == [2_000, 98_000, 0]  # type: ignore[union-attr]
    balances = {a: (await store.get_account(a)).balance_milli for a in (poor.id, rich.id)}  # type: ignore[union-attr]
    assert balances == {poor.id: 0, rich.id: 97_000}
    for r in results:
        if not isinstance(r, BaseException):
            for m in r.accepted:
                stored = await store.get_message(m.account_id, m.id)
                assert stored is not None and stored.status == "queued"
    stats = await store.queue_stats()
    assert sum(stats["counts"].values()) == 9


async def test_a_global_kill_switch_refuses_every_accept_of_the_batch(any_store: SqlStore) -> None:
    store = any_store
    acc = await store.create_account(name="a", balance_milli=10_000)
    await store.set_switch("global", "*", True)
    results = await asyncio.gather(
        *(store.accept_messages(acc.id, [row(acc.id)], charge=True) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(r, SendingPaused) for r in results)
    fresh = await store.get_account(acc.id)
    assert fresh is not None and fresh.balance_milli == 10_000
    with pytest.raises(SendingPaused):
        await store.accept_messages(acc.id, [row(acc.id)], charge=True)


async def test_one_failing_accept_in_a_batch_leaves_the_others_accepted_and_charged_once(
    any_store: SqlStore,
) -> None:
    store = any_store
    acc = await store.create_account(name="a", balance_milli=10_000)
    taken = row(acc.id)
    await store.accept_messages(acc.id, [taken], charge=True)  # 9,000 left
    commits = store.writer.commits
    results = await asyncio.gather(
        store.accept_messages(acc.id, [row(acc.id)], charge=True),
        store.accept_messages(acc.id, [row(acc.id), row(acc.id)], charge=True),
        store.accept_messages(acc.id, [taken], charge=True),  # its id is taken: this one fails
        store.accept_messages(acc.id, [row(acc.id)], charge=True),
        return_exceptions=True,
    )
    assert store.writer.commits - commits < len(results)  # they shared a commit
    assert isinstance(results[2], Exception) and not isinstance(results[2], AccountGone)
    assert [len(r.accepted) for r in results if not isinstance(r, BaseException)] == [1, 2, 1]
    fresh = await store.get_account(acc.id)
    assert fresh is not None and fresh.balance_milli == 5_000  # four more, charged once each
    stats = await store.queue_stats()
    assert sum(stats["counts"].values()) == 5
