"""The lifecycle rule, ids, keys and the GCRA limiter (pure logic, exhaustively)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dakghar.core.ids import new_id
from dakghar.core.keys import generate_key, parse_key, verify_key
from dakghar.core.message import (
    FINAL_STATUSES,
    Status,
    WebhookEvents,
    can_transition,
    is_retry_note,
)
from dakghar.core.ratelimit import Gcra

ORDER = [Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.SENT]


def test_nothing_leaves_a_final_status() -> None:
    for final, other in itertools.product(FINAL_STATUSES, Status):
        assert not can_transition(final, other)


def test_progress_only_moves_forward_even_for_a_retry() -> None:
    for a, b in itertools.product(ORDER, ORDER):
        assert can_transition(a, b) == (ORDER.index(b) > ORDER.index(a)), (a, b)


def test_a_retry_is_a_note_on_a_sending_message_not_a_move() -> None:
    notes = [(a, b) for a, b in itertools.product(Status, Status) if is_retry_note(a, b)]
    assert notes == [(Status.SENDING, Status.SENDING)]


def test_webhook_events_settings_choose_which_changes_are_posted() -> None:
    finals = sorted(FINAL_STATUSES)
    assert [s for s in Status if WebhookEvents.FINAL.wants(s)] == [s for s in Status if s in finals]
    assert {s for s in Status if WebhookEvents.SENT.wants(s)} == {Status.SENT, *finals}
    assert all(WebhookEvents.ALL.wants(s) for s in Status)


def test_only_scheduled_or_queued_messages_can_be_canceled() -> None:
    assert can_transition(Status.QUEUED, Status.CANCELED)
    assert can_transition(Status.SCHEDULED, Status.CANCELED)
    assert not can_transition(Status.SENDING, Status.CANCELED)
    assert not can_transition(Status.SENT, Status.CANCELED)


def test_a_late_report_may_settle_a_message_still_sending() -> None:
    assert can_transition(Status.SENDING, Status.DELIVERED)


def test_ids_are_prefixed_unique_and_time_ordered() -> None:
    ids = [new_id("msg") for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(i.startswith("msg_") and len(i) == 32 for i in ids)
    assert [i[:16] for i in ids] == sorted(i[:16] for i in ids)


def test_keys_verify_only_themselves_and_parse_their_lookup_id() -> None:
    secret = b"s" * 32
    k = generate_key(secret, "test")
    assert k.key.startswith("test_") and k.key_id == "_".join(k.key.split("_")[:2])
    assert parse_key(k.key) == ("test", k.key_id)
    assert verify_key(secret, k.key, k.key_hash)
    assert not verify_key(secret, k.key + "x", k.key_hash)
    assert not verify_key(b"other" * 8, k.key, k.key_hash)
    for junk in ("", "test_", "prod_abcdefghijkl_x", "live_short_x", "é" * 20, "x" * 500):
        assert parse_key(junk) is None


def test_the_limiter_allows_the_burst_then_paces_at_the_rate() -> None:
    g = Gcra(rate=10, burst=5)
    assert [g.hit("k", 0.0).allowed for _ in range(6)] == [True] * 5 + [False]
    denied = g.hit("k", 0.0)
    assert abs(denied.retry_after - 0.1) < 1e-9
    assert g.hit("k", 0.1).allowed
    assert not g.hit("k", 0.1).allowed
    assert g.hit("other", 0.0).allowed


@settings(max_examples=150, deadline=None)
@given(
    rate=st.integers(1, 1000),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 0.05, allow_nan=False), min_size=1, max_size=300),
)
def test_the_limiter_never_admits_more_than_burst_plus_rate_times_time(
    rate: int, burst: int, gaps: list[float]
) -> None:
    g = Gcra(rate=rate, burst=burst)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        if g.hit("k", now).allowed:
            admitted += 1
    assert admitted <= burst + rate * now + 1e-6


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=100))
def test_a_denied_request_is_admitted_once_its_retry_after_has_passed(gaps: list[float]) -> None:
    g = Gcra(rate=5, burst=2)
    now = 0.0
    for gap in gaps:
        now += gap
        d = g.hit("k", now)
        if not d.allowed:
            assert g.hit("k", now + d.retry_after + 1e-9).allowed
            now += d.retry_after + 1e-9


def test_gcra_gives_the_whole_burst_at_rates_whose_interval_is_not_exact_in_binary() -> None:
    from dakghar.core.ratelimit import Gcra

    for rate in (10, 3, 7, 100):  # 1/10 and friends are inexact floats
        g = Gcra(rate, 5)
        decisions = [g.hit("k", 1000.0) for _ in range(6)]
        assert [d.allowed for d in decisions] == [True] * 5 + [False], rate
        assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0], rate
