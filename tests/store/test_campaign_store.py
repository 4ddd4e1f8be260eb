"""The store's campaigns area (``CampaignStore``) on every backend: rows, rejects, staging.

Everything goes through the interface (and ``accept_messages``/``get_message``/``apply`` of the
store), never through a backend's SQL, so the same tests hold for each backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dakghar.campaigns import records
from dakghar.core.ids import new_id
from dakghar.store.base import MessageRow, StatusChange, now_ms
from dakghar.store.campaigns import (
    PAUSE_SHIFT,
    STAGE_SHIFT,
    CampaignMessage,
    CampaignRow,
    CampaignStore,
    Reject,
)
from dakghar.store.sql.core import SqlStore
from tests.store.test_sqlite_store import row

Store = SqlStore  # what any_store yields; the tests use only its interfaces


def campaign(account_id: str, status: str = "ingesting", **fields: Any) -> CampaignRow:
    now = now_ms()
    c = CampaignRow(
        new_id("cmp"), account_id, "diwali", "promotional", "DKGHAR", status, None, None,
        0, 0, 0, 0, 0, None, now, now,
    )  # fmt: skip
    for k, v in fields.items():
        setattr(c, k, v)
    return c


async def messages(
    store: Store, account_id: str, campaign_id: str | None, n: int, *, staged: bool = False
) -> list[MessageRow]:
    """``n`` queued messages of the campaign, written like an ingest writes them."""
    rows = []
    for i in range(n):
        m = row(account_id)
        m.to_number = f"+9198{i:08d}"
        m.campaign_id = campaign_id
        if staged:
            assert m.next_attempt_at is not None
            m.next_attempt_at += STAGE_SHIFT
            m.expires_at += STAGE_SHIFT
        rows.append(m)
    await store.accept_messages(account_id, rows, charge=False)
    return rows


async def due(store: Store, m: MessageRow) -> tuple[int | None, int]:
    got = await store.get_message(m.account_id, m.id)
    assert got is not None
    return got.next_attempt_at, got.expires_at


async def test_the_store_has_the_campaigns_interface(any_store: Store) -> None:
    assert isinstance(any_store, CampaignStore)


async def test_a_campaign_is_stored_read_back_and_updated(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    other = await any_store.create_account(name="b")
    c = campaign(acc.id, rate_per_second=50, schedule_at=now_ms() + 60_000)
    await any_store.insert_campaign(c)
    assert await any_store.get_campaign(acc.id, c.id) == c
    assert await any_store.get_campaign(other.id, c.id) is None  # another account's
    assert await any_store.get_campaign(acc.id, "cmp_missing") is None
    await any_store.update_campaign(c.id, name="holi", sender=None)
    got = await any_store.get_campaign(acc.id, c.id)
    assert got is not None and (got.name, got.sender) == ("holi", None)
    assert got.updated_at >= c.updated_at


async def test_recent_campaigns_are_newest_first_without_the_canceled(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    other = await any_store.create_account(name="b")
    now = now_ms()
    old = campaign(acc.id, "running", created_at=now - 3000)
    gone = campaign(acc.id, "canceled", created_at=now - 2000)
    new = campaign(other.id, "paused", created_at=now - 1000)
    for c in (old, gone, new):
        await any_store.insert_campaign(c)
    assert [c.id for c in await any_store.recent_campaigns()] == [new.id, old.id]
    assert [c.id for c in await any_store.recent_campaigns(1)] == [new.id]


async def test_campaigns_are_found_by_status_across_accounts(any_store: Store) -> None:
    a = await any_store.create_account(name="a")
    b = await any_store.create_account(name="b")
    ing = [campaign(a.id), campaign(b.id)]
    running = campaign(a.id, "running")
    for c in (*ing, running):
        await any_store.insert_campaign(c)
    found = await any_store.campaigns_with_status(("ingesting",))
    assert sorted(c.id for c in found) == sorted(c.id for c in ing)
    both = await any_store.campaigns_with_status(("ingesting", "running", "paused"))
    assert len(both) == 3
    assert await any_store.campaigns_with_status(()) == []


async def test_rejects_are_kept_in_line_order_and_read_page_by_page(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id)
    await any_store.insert_campaign(c)
    await any_store.add_campaign_rejects(c.id, [Reject(5, "x" * 100, "invalid_number")])
    await any_store.add_campaign_rejects(
        c.id, [Reject(n, f"+91{n}", "dnd_blocked") for n in (3, 9)]
    )
    await any_store.add_campaign_rejects(c.id, [])
    first = await any_store.campaign_rejects(c.id, -1, 2)
    assert first == [Reject(3, "+913", "dnd_blocked"), Reject(5, "x" * 64, "invalid_number")]
    assert await any_store.campaign_rejects(c.id, 5, 2) == [Reject(9, "+919", "dnd_blocked")]
    assert await any_store.campaign_rejects(c.id, 9, 2) == []


async def test_a_campaigns_messages_are_walked_in_id_order_and_no_others(
    any_store: Store,
) -> None:
    acc = await any_store.create_account(name="a")
    other = await any_store.create_account(name="b")
    c, sibling = campaign(acc.id, "running"), campaign(acc.id, "running")
    await any_store.insert_campaign(c)
    await any_store.insert_campaign(sibling)
    mine = []
    for _ in range(3):  # interleaved with another campaign, plain messages, another account
        mine += await messages(any_store, acc.id, c.id, 3)
        await messages(any_store, acc.id, sibling.id, 2)
        await messages(any_store, acc.id, None, 2)
        await messages(any_store, other.id, None, 2)
    walked: list[CampaignMessage] = []
    after = ""
    while page := await any_store.campaign_messages(c.id, after, 4):
        assert len(page) <= 4
        walked += page
        after = page[-1].id
    assert [m.id for m in walked] == sorted(m.id for m in mine)
    assert {(m.status, m.error_code) for m in walked} == {("queued", None)}
    assert {m.to_number for m in walked} == {m.to_number for m in mine}


async def test_progress_counts_the_campaigns_messages_by_status(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id, "running")
    await any_store.insert_campaign(c)
    assert await any_store.campaign_progress(c.id) == {}
    rows = await messages(any_store, acc.id, c.id, 5)
    await messages(any_store, acc.id, None, 2)
    await any_store.apply([StatusChange(rows[0].id, "canceled", error_code="canceled")])
    assert await any_store.campaign_progress(c.id) == {"queued": 4, "canceled": 1}


async def test_ingest_progress_is_written_only_while_ingesting(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id)
    await any_store.insert_campaign(c)
    counts = {"total": 10, "valid": 7, "invalid": 1, "duplicates": 1, "dnd_filtered": 1}
    assert await any_store.campaign_ingest_progress(c.id, **counts) == "ingesting"
    got = await any_store.get_campaign(acc.id, c.id)
    assert got is not None and (got.total, got.valid, got.dnd_filtered) == (10, 7, 1)
    assert await any_store.end_campaign(c.id, "canceled", only_if=None)
    assert await any_store.campaign_ingest_progress(c.id, total=99) == "canceled"
    got = await any_store.get_campaign(acc.id, c.id)
    assert got is not None and got.total == 10  # not written once canceled
    assert await any_store.campaign_ingest_progress("cmp_missing", total=1) == "failed"


async def test_an_ingest_commits_once_and_not_after_it_ended(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    c, stopped = campaign(acc.id), campaign(acc.id)
    await any_store.insert_campaign(c)
    await any_store.insert_campaign(stopped)
    assert await any_store.commit_campaign_ingest(c.id, "running", total=3, valid=3)
    got = await any_store.get_campaign(acc.id, c.id)
    assert got is not None and (got.status, got.total, got.valid) == ("running", 3, 3)
    assert not await any_store.commit_campaign_ingest(c.id, "scheduled", total=4)
    assert await any_store.end_campaign(stopped.id, "failed", only_if="ingesting")
    assert not await any_store.commit_campaign_ingest(stopped.id, "running", total=1)


async def test_ending_a_campaign_happens_once_and_only_from_the_status_asked(
    any_store: Store,
) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id, "running")
    await any_store.insert_campaign(c)
    assert not await any_store.end_campaign(c.id, "failed", only_if="ingesting")
    assert await any_store.end_campaign(c.id, "canceled", only_if=None)
    assert not await any_store.end_campaign(c.id, "canceled", only_if=None)
    assert not await any_store.end_campaign(c.id, "failed", only_if=None)
    got = await any_store.get_campaign(acc.id, c.id)
    assert got is not None and got.status == "canceled"


async def release_all(store: Store, campaign_id: str, limit: int) -> tuple[int, int]:
    """Release chunk by chunk as the service does; (messages moved, chunks)."""
    moved = chunks = 0
    after = ""
    while True:
        n, after = await store.release_staged(campaign_id, after, limit)
        if not n:
            return moved, chunks
        moved, chunks = moved + n, chunks + 1


async def test_staged_messages_are_released_in_chunks_once_committed(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    other = await any_store.create_account(name="b")
    c = campaign(acc.id)
    await any_store.insert_campaign(c)
    staged: list[MessageRow] = []
    for _ in range(3):  # other messages between the campaign's, in id order
        staged += await messages(any_store, acc.id, c.id, 4, staged=True)
        await messages(any_store, other.id, None, 1)
    before = {m.id: await due(any_store, m) for m in staged}
    assert await any_store.campaign_has_staged(c.id)
    assert await any_store.release_staged(c.id, "", 5) == (0, "")  # still ingesting
    assert await any_store.commit_campaign_ingest(c.id, "running", total=12, valid=12)
    assert await release_all(any_store, c.id, 5) == (12, 3)
    assert not await any_store.campaign_has_staged(c.id)
    for m in staged:
        (at, expires), (was_at, was_expires) = await due(any_store, m), before[m.id]
        assert was_at is not None
        assert (at, expires) == (was_at - STAGE_SHIFT, was_expires - STAGE_SHIFT)
    assert await release_all(any_store, c.id, 5) == (0, 0)  # nothing moves twice


async def test_a_release_after_a_crash_moves_only_what_is_still_staged(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id, "running")
    await any_store.insert_campaign(c)
    done = await messages(any_store, acc.id, c.id, 3)  # released before the crash
    left = await messages(any_store, acc.id, c.id, 3, staged=True)
    before = [await due(any_store, m) for m in done]
    assert (await release_all(any_store, c.id, 2))[0] == 3
    assert [await due(any_store, m) for m in done] == before
    times = [(await due(any_store, m))[0] or 0 for m in left]
    assert all(t < now_ms() + 60_000 for t in times)  # released to their real times


async def test_staged_messages_of_an_ended_campaign_are_not_released(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id)
    await any_store.insert_campaign(c)
    await messages(any_store, acc.id, c.id, 2, staged=True)
    assert await any_store.end_campaign(c.id, "failed", only_if="ingesting")
    assert await release_all(any_store, c.id, 10) == (0, 0)
    assert await any_store.campaign_has_staged(c.id)
    ids = await any_store.campaign_waiting_ids(c.id, 10)
    assert len(ids) == 2
    assert len(await any_store.campaign_waiting_ids(c.id, 1)) == 1


async def test_pausing_holds_waiting_messages_and_resuming_shifts_them_by_the_pause(
    any_store: Store,
) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id, "running")
    await any_store.insert_campaign(c)
    waiting = await messages(any_store, acc.id, c.id, 3)
    staged = await messages(any_store, acc.id, c.id, 2, staged=True)
    before = {m.id: await due(any_store, m) for m in (*waiting, *staged)}
    now = now_ms()
    assert await any_store.hold_campaign(c.id, now) == 3  # staged rows are not held again
    got = await any_store.get_campaign(acc.id, c.id)
    assert got is not None and (got.status, got.paused_at) == ("paused", now)
    for m in waiting:
        at, _ = await due(any_store, m)
        assert at == (before[m.id][0] or 0) + PAUSE_SHIFT
    # Rows released into a paused campaign come back held, like the others.
    assert (await release_all(any_store, c.id, 10))[0] == 2
    for m in staged:
        at, _ = await due(any_store, m)
        assert at == (before[m.id][0] or 0) - STAGE_SHIFT + PAUSE_SHIFT
    assert await any_store.resume_campaign(c.id, now, now + 5000) == 5
    got = await any_store.get_campaign(acc.id, c.id)
    assert got is not None and (got.status, got.paused_at) == ("running", None)
    for m in waiting:
        at, expires = await due(any_store, m)
        assert (at, expires) == ((before[m.id][0] or 0) + 5000, before[m.id][1] + 5000)
    for m in staged:
        at, _ = await due(any_store, m)
        assert at == (before[m.id][0] or 0) - STAGE_SHIFT + 5000


async def test_resuming_leaves_staged_messages_for_their_release(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id, "running")
    await any_store.insert_campaign(c)
    staged = await messages(any_store, acc.id, c.id, 2, staged=True)
    before = [await due(any_store, m) for m in staged]
    now = now_ms()
    assert await any_store.hold_campaign(c.id, now) == 0
    assert await any_store.resume_campaign(c.id, now, now + 1000) == 0
    assert [await due(any_store, m) for m in staged] == before
    assert await any_store.campaign_has_staged(c.id)


async def test_the_report_lists_rejects_then_messages(any_store: Store) -> None:
    acc = await any_store.create_account(name="a")
    c = campaign(acc.id, "running")
    await any_store.insert_campaign(c)
    await any_store.add_campaign_rejects(
        c.id, [Reject(n, f"bad{n}", "invalid_number") for n in range(2, 7)]
    )
    sent = await messages(any_store, acc.id, c.id, 7)
    rows: Sequence[tuple[str, str, str, str]] = [
        r async for r in records.report_rows(any_store, c.id, page=2)
    ]
    assert rows[:5] == [(f"bad{n}", "rejected", "invalid_number", "") for n in range(2, 7)]
    assert [r[3] for r in rows[5:]] == sorted(m.id for m in sent)
    assert all(r[1] == "queued" for r in rows[5:])
