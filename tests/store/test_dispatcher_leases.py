"""Claims have owners: rescued only from a dispatcher that stopped heartbeating, and fenced.

The scale-out rule (``store.sql.pipeline_ops.sweep``): a live dispatcher's claim is never
taken however long it holds it; a dead one's claims return to the queue; every later write
of a claimed message checks that its writer still owns the claim.
"""

from __future__ import annotations

from dakghar.store.base import Sent, StatusChange, now_ms
from dakghar.store.sql import pipeline_ops as ops
from dakghar.store.sql.core import SqlStore
from tests.store.test_sqlite_store import row


async def _stale(store: SqlStore, owner: str) -> None:
    """Make ``owner``'s last heartbeat older than the fleet waits for."""
    old = now_ms() - ops.DEAD_AFTER_MS - 1000
    await store._write(
        lambda c: c.execute("UPDATE dispatchers SET heartbeat_at = ? WHERE id = ?", (old, owner))
    )


async def _queued(store: SqlStore, n: int = 1) -> tuple[str, list[str]]:
    acc = await store.create_account(name="a", balance_milli=0)
    rows = [row(acc.id) for _ in range(n)]
    await store.accept_messages(acc.id, rows, charge=False)
    return acc.id, [r.id for r in rows]


async def test_a_live_owner_keeps_its_claim_past_the_lease(any_store: SqlStore) -> None:
    acc, _ids = await _queued(any_store)
    await any_store.register_dispatcher("dsp_a", "host", 1)
    [got], _ = await any_store.claim(1, [acc], 1, lease_ms=1, owner="dsp_a")
    assert got.lease_owner == "dsp_a"
    await any_store.register_dispatcher("dsp_b", "host", 2)
    moved = await any_store.sweep(owner="dsp_b")
    assert moved["reclaimed"] == []  # its lease ran out, but its owner heartbeats
    assert await any_store.heartbeat("dsp_a")


async def test_a_dead_owners_claims_return_and_its_late_writes_are_fenced(
    any_store: SqlStore,
) -> None:
    acc, [mid] = await _queued(any_store)
    await any_store.register_dispatcher("dsp_a", "host", 1)
    await any_store.register_dispatcher("dsp_b", "host", 2)
    await any_store.claim(1, [acc], 1, lease_ms=60_000, owner="dsp_a")
    await _stale(any_store, "dsp_a")
    moved = await any_store.sweep(owner="dsp_b")
    assert [m.id for m in moved["reclaimed"]] == [mid]
    assert not await any_store.heartbeat("dsp_a")  # declared dead: it must stop sending
    [again], _ = await any_store.claim(1, [acc], 1, lease_ms=60_000, owner="dsp_b")
    assert again.id == mid and again.lease_owner == "dsp_b"
    # The dead dispatcher's late answers change nothing of dsp_b's claim.
    [late] = await any_store.mark_sent_many([Sent(mid, "c1", ["p-a"], owner="dsp_a")])
    assert late is None
    await any_store.apply(
        [StatusChange(mid, "failed", error_code="x", detail="late", owner="dsp_a")]
    )
    await any_store.release([mid], owner="dsp_a")
    current = await any_store.get_message(acc, mid)
    assert current is not None
    assert (current.status, current.lease_owner) == ("sending", "dsp_b")
    [done] = await any_store.mark_sent_many([Sent(mid, "c1", ["p-b"], owner="dsp_b")])
    assert done is not None and done.status == "sent" and done.lease_owner is None


async def test_a_clean_stop_leaves_its_claims_to_the_next_sweep(any_store: SqlStore) -> None:
    acc, ids = await _queued(any_store, 3)
    await any_store.register_dispatcher("dsp_a", "host", 1)
    await any_store.claim(1, [acc], 3, lease_ms=60_000, owner="dsp_a")
    await any_store.unregister_dispatcher("dsp_a")
    moved = await any_store.sweep(owner="dsp_b")
    assert sorted(m.id for m in moved["reclaimed"]) == sorted(ids)
