"""The store's pipeline operations on real SQLite: fair claims, leases, reports, outbox."""

from __future__ import annotations

import asyncio
import json

import pytest

from dakghar.store.base import (
    MessageEvent,
    MessageRow,
    Sent,
    StatusChange,
    WebhookEvent,
    WebhookResult,
    history,
    now_ms,
)
from dakghar.store.sql.core import SqlStore
from tests.store.test_sqlite_store import row


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """Every backend (the contract suite: ``tests/store/conftest.py``)."""
    return any_store


async def queue(store: SqlStore, account_id: str, n: int, **fields: object) -> list[str]:
    rows = []
    for _ in range(n):
        r = row(account_id)
        for k, v in fields.items():
            setattr(r, k, v)
        rows.append(r)
    await store.accept_messages(account_id, rows, charge=False)
    return [r.id for r in rows]


async def claimed(store: SqlStore, n: int) -> tuple[str, list[MessageRow]]:
    """A new account with ``n`` messages queued and claimed: its id and the claimed rows."""
    acc = await store.create_account(name="a", balance_milli=0)
    await queue(store, acc.id, n)
    rows, _ = await store.claim(1, [acc.id], n, lease_ms=60_000)
    return acc.id, rows


async def test_a_claim_takes_turns_between_accounts_and_leases_what_it_takes(
    store: SqlStore,
) -> None:
    big = await store.create_account(name="big", balance_milli=0)
    small = await store.create_account(name="small", balance_milli=0)
    await queue(store, big.id, 50)
    await queue(store, small.id, 3)
    rows, dry = await store.claim(1, [big.id, small.id], 5, lease_ms=30_000)
    owners = [r.account_id for r in rows]
    assert owners.count(big.id) == 5 and owners.count(small.id) == 3
    assert dry == {small.id: None}  # small has nothing left in this lane
    assert all(r.status == "sending" and r.lease_until and r.attempts == 1 for r in rows)
    again, _ = await store.claim(1, [small.id], 5, lease_ms=30_000)
    assert again == []  # claimed messages are not claimed twice


async def test_a_sandbox_only_claim_leaves_live_messages_queued(store: SqlStore) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    live = await queue(store, acc.id, 4, sandbox=False)
    sandbox = await queue(store, acc.id, 2, sandbox=True)
    rows, dry = await store.claim(1, [acc.id], 10, lease_ms=30_000, sandbox_only=True)
    assert sorted(r.id for r in rows) == sorted(sandbox)
    assert dry == {acc.id: None}  # no sandbox message left; the live ones do not count
    for mid in live:
        m = await store.get_message(acc.id, mid)
        assert m is not None and m.status == "queued" and m.attempts == 0
    rows, _ = await store.claim(1, [acc.id], 10, lease_ms=30_000)
    assert sorted(r.id for r in rows) == sorted(live)


async def test_a_sandbox_only_claim_can_also_take_live_messages_past_validity(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    await queue(store, acc.id, 3, sandbox=False)  # still valid
    outlived = await queue(store, acc.id, 2, sandbox=False, expires_at=now_ms() - 1)
    rows, _ = await store.claim(1, [acc.id], 10, lease_ms=30_000, sandbox_only=True)
    assert rows == []
    rows, dry = await store.claim(
        1, [acc.id], 10, lease_ms=30_000, sandbox_only=True, or_expired=True
    )
    assert sorted(r.id for r in rows) == sorted(outlived)  # for the claimer to expire
    assert dry == {acc.id: None}


async def test_a_future_retry_is_not_claimed_before_it_is_due(store: SqlStore) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    later = now_ms() + 60_000
    await queue(store, acc.id, 2, next_attempt_at=later)
    rows, dry = await store.claim(1, [acc.id], 10, lease_ms=1000)
    assert rows == [] and dry == {acc.id: later}


async def test_an_expired_lease_returns_the_message_to_the_queue(store: SqlStore) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    await queue(store, acc.id, 1)
    rows, _ = await store.claim(1, [acc.id], 1, lease_ms=1)
    await asyncio.sleep(0.01)
    moved = await store.sweep()
    assert [m.id for m in moved["reclaimed"]] == [rows[0].id]
    again, _ = await store.claim(1, [acc.id], 1, lease_ms=1000)
    assert [r.id for r in again] == [rows[0].id] and again[0].attempts == 2


async def test_a_report_before_the_submit_response_is_applied_when_the_id_arrives(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    [mid] = await queue(store, acc.id, 1)
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    early = await store.report("smsc", "pid-1", StatusChange("", "delivered", detail="DELIVRD"))
    assert early is None
    msg = await store.mark_sent(mid, "smsc", ["pid-1"])
    assert msg is not None and msg.status == "delivered" and msg.connector == "smsc"
    got = await store.get_message(acc.id, mid, with_events=True)
    assert got is not None
    assert [e.status for e in got.events or []] == ["queued", "sending", "sent", "delivered"]


async def test_a_long_message_settles_only_when_every_part_is_reported(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    [mid] = await queue(store, acc.id, 1)
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    await store.mark_sent(mid, "smsc", ["p1", "p2", "p3"])
    assert await store.report("smsc", "p1", StatusChange("", "delivered")) is None
    assert await store.report("smsc", "p3", StatusChange("", "delivered")) is None
    done = await store.report(
        "smsc", "p2", StatusChange("", "undelivered", error_code="undelivered")
    )
    assert done is not None and done.status == "undelivered" and done.error_code == "undelivered"


async def test_status_changes_write_signed_webhook_events_in_order(store: SqlStore) -> None:
    acc = await store.create_account(name="a", balance_milli=0, webhook_events="sent")
    [mid] = await queue(store, acc.id, 1, callback_url="http://127.0.0.1:9/hook", reference="r1")
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    await store.mark_sent(mid, "smsc", ["x1"])
    await store.report("smsc", "x1", StatusChange("", "delivered"))
    first = await store.claim_webhooks(10, lease_ms=60_000)
    assert len(first) == 1  # only the oldest pending event of a message at a time
    payload = json.loads(first[0].payload)
    assert payload["status"] == "sent" and payload["reference"] == "r1"
    assert set(payload) == {
        "event_id", "type", "message_id", "status", "error_code", "reference", "at",
        "segments", "connector",
    }  # fmt: skip
    await store.webhook_result(first[0].id, delivered=True, next_attempt_at=None, error=None)
    second = await store.claim_webhooks(10, lease_ms=60_000)
    assert json.loads(second[0].payload)["status"] == "delivered"


async def _webhook_statuses(store: SqlStore, webhook_events: str, final: str) -> list[str]:
    acc = await store.create_account(name="w", balance_milli=0, webhook_events=webhook_events)
    [mid] = await queue(store, acc.id, 1, callback_url="http://127.0.0.1:9/hook")
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    await store.mark_sent(mid, "smsc", [f"x-{mid}"])
    await store.report("smsc", f"x-{mid}", StatusChange("", final, error_code=None))
    statuses = []
    while events := await store.claim_webhooks(10, lease_ms=60_000):
        for e in events:
            statuses.append(json.loads(e.payload)["status"])
            await store.webhook_result(e.id, delivered=True, next_attempt_at=None, error=None)
    return statuses


async def test_by_default_a_message_gets_one_webhook_at_its_final_status(
    store: SqlStore,
) -> None:
    assert await _webhook_statuses(store, "final", "delivered") == ["delivered"]
    assert await _webhook_statuses(store, "final", "undelivered") == ["undelivered"]
    assert await _webhook_statuses(store, "sent", "delivered") == ["sent", "delivered"]
    assert await _webhook_statuses(store, "all", "delivered") == ["sending", "sent", "delivered"]


async def test_a_retry_keeps_the_status_and_is_an_event_of_its_own(store: SqlStore) -> None:
    acc = await store.create_account(name="r", balance_milli=0, webhook_events="all")
    [mid] = await queue(store, acc.id, 1, callback_url="http://127.0.0.1:9/hook")
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    retry = StatusChange(
        mid, "sending", detail="retry 1 in 1.0 s: throttled",
        fields={"next_attempt_at": now_ms(), "lease_until": None},
    )  # fmt: skip
    [waiting] = await store.apply([retry])
    assert waiting is not None and waiting.status == "sending" and waiting.lease_until is None
    assert (await store.waiting_accounts()) == [(1, acc.id, waiting.next_attempt_at)]
    [again], _ = await store.claim(1, [acc.id], 1, lease_ms=10_000)
    assert again.id == mid and again.attempts == 2 and again.lease_until
    got = await store.get_message(acc.id, mid, with_events=True)
    assert got is not None
    assert [(e.status, e.detail) for e in got.events or []] == [
        ("queued", "accepted"),
        ("sending", None),
        ("sending", "retry 1 in 1.0 s: throttled"),
    ]  # one claim event, one retry event, and never "queued" again
    statuses = [json.loads(e.payload)["status"] for e in await store.claim_webhooks(10, lease_ms=1)]
    assert statuses == ["sending"]  # the retry is not a status change: no second webhook


async def test_an_abandoned_claim_returns_to_the_queue_still_sending(store: SqlStore) -> None:
    acc = await store.create_account(name="l", balance_milli=0)
    [mid] = await queue(store, acc.id, 1)
    await store.claim(1, [acc.id], 1, lease_ms=10_000, owner="dsp_dead")
    # A dispatcher that knows it is alone (the embedded lock) takes every other claim back.
    moved = await store.sweep(owner="dsp_new", alone=True)
    assert [(m.id, m.status, m.lease_until) for m in moved["reclaimed"]] == [(mid, "sending", None)]
    [again], _ = await store.claim(1, [acc.id], 1, lease_ms=10_000)
    assert again.id == mid


async def test_expiry_refunds_only_what_never_reached_a_carrier(store: SqlStore) -> None:
    acc = await store.create_account(name="a", balance_milli=5000)
    sent_row, kept_row = row(acc.id, price=1000), row(acc.id, price=1000)
    sent_row.expires_at = kept_row.expires_at = now_ms() - 1
    await store.accept_messages(acc.id, [sent_row, kept_row], charge=True)
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    claimed = (await store.get_message(acc.id, sent_row.id)) or (
        await store.get_message(acc.id, kept_row.id)
    )
    assert claimed is not None
    sending = [m for m in (sent_row.id, kept_row.id)]
    for mid in sending:
        await store.mark_sent(mid, "smsc", [f"pid-{mid}"])
    moved = await store.sweep()
    assert {m.id for m in moved["expired"]} == set(sending)
    fresh = await store.get_account(acc.id)
    assert fresh is not None and fresh.balance_milli == 3000  # sent ones stay charged


async def test_kill_switches_are_stored_and_listed(store: SqlStore) -> None:
    acc = await store.create_account(name="a", balance_milli=0, sending_paused=True)
    await store.set_switch("global", "*", True)
    await store.set_switch("connector", "smsc-a", True)
    await store.set_switch("connector", "smsc-a", False)
    assert await store.switches() == {
        ("global", "*"): True,
        ("connector", "smsc-a"): False,
        ("account", acc.id): True,
    }


async def test_a_released_claim_is_back_in_the_queue_with_its_attempt_uncounted(
    store: SqlStore,
) -> None:
    account, rows = await claimed(store, 3)
    await store.release([r.id for r in rows[:2]])
    again, _ = await store.claim(1, [account], 3, lease_ms=60_000)
    assert sorted(r.id for r in again) == sorted(r.id for r in rows[:2])
    assert all(r.attempts == 1 and r.status == "sending" for r in again)


async def test_batched_results_settle_each_message_and_count_each_in_the_rollups(
    store: SqlStore,
) -> None:
    account, rows = await claimed(store, 40)
    sent = await store.mark_sent_many([Sent(r.id, "c", [f"p{i}"], 1) for i, r in enumerate(rows)])
    assert [m.status if m else None for m in sent] == ["sent"] * 40
    reports = [("c", f"p{i}", StatusChange("", "delivered")) for i in range(40)]
    reports.append(("c", "unknown", StatusChange("", "delivered")))  # kept for later
    done = await store.report_many(reports)
    assert [m.status if m else None for m in done] == ["delivered"] * 40 + [None]
    stats = await store.delivery_stats(account, "connector", 0, now_ms() + 3_600_000)
    assert [(s.key, s.submitted, s.delivered) for s in stats] == [("c", 40, 40)]


async def test_batches_mixing_early_reports_long_messages_and_repeats_settle_each_right(
    store: SqlStore,
) -> None:
    account, rows = await claimed(store, 5)
    ids = [r.id for r in rows]
    # A receipt that beat its submit_sm_resp waits for the id ...
    assert await store.report_many(
        [("c", "early", StatusChange("", "delivered")), ("c", "gone", StatusChange("", "failed"))]
    ) == [None, None]
    # ... and settles its message inside the batch that brings the id.
    sent = await store.mark_sent_many([
        Sent(ids[0], "c", ["early"], 1), Sent(ids[1], "c", ["a1", "a2"], 2),
        Sent(ids[2], "c", ["b"], 1), Sent(ids[3], "c", ["d"], 1), Sent(ids[4], "c", ["e"], 1),
    ])  # fmt: skip
    assert [m.status if m else None for m in sent] == ["delivered", "sent", "sent", "sent", "sent"]
    done = await store.report_many([
        ("c", "a1", StatusChange("", "delivered")),  # one part of two: not settled yet
        ("c", "b", StatusChange("", "delivered")),
        ("c", "b", StatusChange("", "undelivered", error_code="undelivered")),  # too late
        ("c", "d", StatusChange("", "undelivered", error_code="undelivered")),
        ("c", "a2", StatusChange("", "delivered")),  # the last part: settled
        ("c", "nobody", StatusChange("", "delivered")),
    ])  # fmt: skip
    assert [m.status if m else None for m in done] == [
        None, "delivered", None, "undelivered", "delivered", None,
    ]  # fmt: skip
    final = {m: (await store.get_message(account, m)) for m in ids}
    assert [(final[m].status, final[m].segments) for m in ids] == [  # type: ignore[union-attr]
        ("delivered", 1), ("delivered", 2), ("delivered", 1), ("undelivered", 1), ("sent", 1),
    ]  # fmt: skip
    stats = await store.delivery_stats(account, "connector", 0, now_ms() + 3_600_000)
    assert [(s.key, s.submitted, s.delivered) for s in stats] == [("c", 5, 3)]


async def test_each_process_counts_into_its_own_rollup_rows_and_reports_sum_them(
    store: SqlStore,
) -> None:
    from dakghar.store.rollups import shard

    account, rows = await claimed(store, 3)
    await store.mark_sent_many([Sent(r.id, "c", [f"p{i}"], 1) for i, r in enumerate(rows)])
    written = await store._read(
        lambda c: c.execute(
            "SELECT shard, submitted, type FROM stats_hourly WHERE account_id = ?", (account,)
        ).fetchall()
    )
    assert [(r[0], r[1]) for r in written] == [(shard(), 3)]
    other = (shard() + 1) % 64  # what another dispatcher of the fleet writes for the same key
    await store._write(
        lambda c: c.execute(
            "INSERT INTO stats_hourly (account_id, hour, carrier, region, connector, type, shard, "
            "submitted, delivered, failed, delivery_ms, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9) "
            "SELECT account_id, hour, carrier, region, connector, type, ?, 2, 0, 0, 0, "
            "0, 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM stats_hourly WHERE account_id = ?",
            (other, account),
        )
    )
    stats = await store.delivery_stats(account, "connector", 0, now_ms() + 3_600_000)
    assert [(s.key, s.submitted) for s in stats] == [("c", 5)]


async def test_a_first_claim_plain_sent_and_delivered_are_not_stored_but_listed_in_order(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    (mid,) = await queue(store, acc.id, 1)
    await store.claim(1, [acc.id], 1, lease_ms=60_000)
    retry = StatusChange(mid, "sending", detail="retry 1 in 1.0 s: throttled",
                         fields={"lease_until": None})  # fmt: skip
    await store.apply([retry])
    await store.claim(1, [acc.id], 1, lease_ms=60_000)
    await store.mark_sent_many([Sent(mid, "c", ["p1"], 1)])
    await store.report_many([("c", "p1", StatusChange("", "delivered"))])
    msg = await store.get_message(acc.id, mid, with_events=True)
    assert msg is not None and msg.events is not None
    assert [(e.status, e.detail) for e in msg.events] == [
        ("queued", "accepted"),
        ("sending", None),
        ("sending", "retry 1 in 1.0 s: throttled"),  # a retry's claim writes no second row
        ("sent", None),
        ("delivered", None),
    ]
    assert msg.events[-2].at == msg.submitted_at and msg.events[-1].at == msg.delivered_at
    stored = await store._read(  # the implied events (claim, sent, delivered) have no rows
        lambda c: c.execute(
            "SELECT status, detail FROM message_events WHERE message_id = ? ORDER BY id", (mid,)
        ).fetchall()
    )
    assert [tuple(r) for r in stored] == [("sending", "retry 1 in 1.0 s: throttled")]


HOOK = "http://127.0.0.1:9/hook"


async def sent_with_hooks(store: SqlStore, n: int, tag: str) -> tuple[str, list[str]]:
    """A new account's ``n`` messages with a callback URL, claimed and accepted by the carrier
    ``smsc`` under the ids ``{tag}-{message id}``: the account's id and the message ids."""
    acc = await store.create_account(name=tag, balance_milli=0)
    ids = await queue(store, acc.id, n, callback_url=HOOK)
    await store.claim(1, [acc.id], n, lease_ms=10_000)
    await store.mark_sent_many([Sent(m, "smsc", [f"{tag}-{m}"]) for m in ids])
    return acc.id, ids


async def delivered(store: SqlStore, ids: list[str], tag: str) -> None:
    """The carrier's "delivered" receipts for messages of :func:`sent_with_hooks`."""
    await store.report_many([("smsc", f"{tag}-{m}", StatusChange("", "delivered")) for m in ids])


class Hand:
    """A sender's side of ``hand_off_webhooks``: what it was given, and its room."""

    def __init__(self, room: int = 100) -> None:
        self.room = room
        self.taken: list[WebhookEvent] = []

    def take(self, events: list[WebhookEvent]) -> None:
        self.taken += events
        self.room -= len(events)


async def test_final_webhooks_go_straight_to_the_sender_leased_and_come_back_if_never_sent(
    store: SqlStore,
) -> None:
    acc_id, ids = await sent_with_hooks(store, 3, "h")
    hand = Hand()
    store.hand_off_webhooks(hand.take, lambda: hand.room, lease_ms=300)
    await delivered(store, ids, "h")
    assert sorted(e.message_id for e in hand.taken) == sorted(ids)
    assert all(json.loads(e.payload)["status"] == "delivered" for e in hand.taken)
    assert all(e.account_id == acc_id and e.attempts == 0 for e in hand.taken)
    assert await store.claim_webhooks(10, lease_ms=60_000) == []  # leased to the sender
    # Recorded by the ids handed over, as a claimed event's would be.
    await store.webhook_results([WebhookResult(hand.taken[0].id, True, None, None)])
    await asyncio.sleep(0.4)  # the sender "died": the lease ends, and any sender claims them
    back = await store.claim_webhooks(10, lease_ms=60_000)
    assert sorted(e.event_id for e in back) == sorted(e.event_id for e in hand.taken[1:])


async def test_a_handed_over_webhook_never_overtakes_an_older_pending_one(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="h", balance_milli=0, webhook_events="sent")
    [mid] = await queue(store, acc.id, 1, callback_url="http://127.0.0.1:9/hook")
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    hand = Hand()
    store.hand_off_webhooks(hand.take, lambda: hand.room)
    await store.mark_sent(mid, "smsc", ["o1"])
    assert [json.loads(e.payload)["status"] for e in hand.taken] == ["sent"]
    await store.report("smsc", "o1", StatusChange("", "delivered"))
    assert len(hand.taken) == 1  # "sent" is still pending: "delivered" waits in the outbox
    assert await store.claim_webhooks(10, lease_ms=60_000) == []  # behind "sent", in order
    await store.webhook_results([WebhookResult(hand.taken[0].id, True, None, None)])
    [later] = await store.claim_webhooks(10, lease_ms=60_000)
    assert json.loads(later.payload)["status"] == "delivered"


async def test_only_as_many_webhooks_as_the_sender_has_room_for_are_handed_over(
    store: SqlStore,
) -> None:
    _acc, ids = await sent_with_hooks(store, 5, "r")
    hand = Hand(room=2)
    store.hand_off_webhooks(hand.take, lambda: hand.room)
    await delivered(store, ids, "r")
    assert len(hand.taken) == 2
    rest = await store.claim_webhooks(10, lease_ms=60_000)
    assert {e.message_id for e in rest} == set(ids) - {e.message_id for e in hand.taken}
    store.hand_off_webhooks(None)  # stopped: every event is left for a claim
    _acc, [extra] = await sent_with_hooks(store, 1, "x")
    await delivered(store, [extra], "x")
    assert len(hand.taken) == 2
    assert [e.message_id for e in await store.claim_webhooks(10, lease_ms=60_000)] == [extra]


async def test_a_delivered_webhook_leaves_the_outbox_and_a_failed_one_stays(
    store: SqlStore,
) -> None:
    _acc, ids = await sent_with_hooks(store, 3, "o")
    await delivered(store, ids, "o")
    done, retry, failed = await store.claim_webhooks(10, lease_ms=60_000)
    await store.webhook_results(
        [
            WebhookResult(done.id, True, None, None),
            WebhookResult(retry.id, False, now_ms() - 1, "HTTP 500"),
            WebhookResult(failed.id, False, None, "HTTP 410"),
        ]
    )
    left = await store._read(
        lambda c: c.execute(
            "SELECT id, status, attempts, last_error FROM webhook_events ORDER BY id"
        ).fetchall()
    )
    assert sorted(tuple(r) for r in left) == sorted(
        [(retry.id, "pending", 1, "HTTP 500"), (failed.id, "failed", 1, "HTTP 410")]
    )
    assert [e.id for e in await store.claim_webhooks(10, lease_ms=60_000)] == [retry.id]
    assert (await store.queue_stats())["webhooks_pending"] == 1


async def test_a_first_claim_is_a_column_of_the_message_not_an_event_row(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="c", balance_milli=0)
    [mid] = await queue(store, acc.id, 1)
    before = now_ms()
    [first], _ = await store.claim(1, [acc.id], 1, lease_ms=10_000)
    assert first.claimed_at is not None and first.claimed_at >= before

    async def rows() -> list[tuple[object, ...]]:
        return await store._read(
            lambda c: c.execute(
                "SELECT status, detail FROM message_events WHERE message_id = ? ORDER BY id",
                (mid,),
            ).fetchall()
        )

    assert await rows() == []
    retry = StatusChange(
        mid, "sending", detail="retry 1 in 0.0 s: throttled",
        fields={"next_attempt_at": now_ms(), "lease_until": None},
    )  # fmt: skip
    await store.apply([retry])
    [again], _ = await store.claim(1, [acc.id], 1, lease_ms=10_000)
    assert again.claimed_at == first.claimed_at  # a retry's claim is not a first claim
    assert [tuple(r) for r in await rows()] == [("sending", "retry 1 in 0.0 s: throttled")]
    await store.mark_sent(mid, "smsc", ["c1"])
    got = await store.get_message(acc.id, mid, with_events=True)
    assert got is not None
    events = got.events or []
    assert [(e.status, e.detail) for e in events] == [
        ("queued", "accepted"),
        ("sending", None),
        ("sending", "retry 1 in 0.0 s: throttled"),
        ("sent", None),
    ]
    assert [e.at for e in events] == [
        got.created_at,
        first.claimed_at,
        events[2].at,
        got.submitted_at,
    ]
    assert got.created_at <= first.claimed_at <= events[2].at


def test_a_first_claim_is_listed_once_whether_stored_or_implied() -> None:
    m = row("acc")
    m.created_at, m.schedule_at, m.submitted_at = 1, 1, 6
    m.status = "sent"
    stored = [MessageEvent("queued", 2, "schedule reached"), MessageEvent("sending", 5, "retry")]
    m.claimed_at = 3  # claimed since migration 0015: between the schedule and the retry
    assert [(e.status, e.at) for e in history(m, stored)] == [
        ("scheduled", 1), ("queued", 2), ("sending", 3), ("sending", 5), ("sent", 6),
    ]  # fmt: skip
    m.claimed_at = None  # claimed before 0015: its row is stored, nothing is implied
    old = [MessageEvent("sending", 3, None), MessageEvent("sending", 5, "retry")]
    assert [(e.status, e.at) for e in history(m, old)] == [
        ("scheduled", 1), ("sending", 3), ("sending", 5), ("sent", 6),
    ]  # fmt: skip
