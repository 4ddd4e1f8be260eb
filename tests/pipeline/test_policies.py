"""The dispatcher's pure policies: circuit breaker, rate schedule and pacer, retry, routing."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dakghar.pipeline.breaker import CircuitBreaker
from dakghar.pipeline.pacing import AsyncPacer, RateSchedule
from dakghar.pipeline.retry import RetryPolicy
from dakghar.pipeline.routing import NoRoute, Router, RoutingInput

# -- breaker ---------------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_probes_and_closes() -> None:
    b = CircuitBreaker(failure_threshold=3, open_seconds=10, max_open_seconds=40)
    for t in range(2):
        b.record_failure(t)
    b.record_success(2)  # a success in between resets the count
    for t in range(3, 6):
        assert b.allow(t)
        b.record_failure(t)
    assert b.snapshot()["state"] == "open" and not b.allow(6)
    assert b.allow(15.1)  # half open: one probe
    assert b.snapshot()["state"] == "half_open"
    assert not b.allow(15.2)  # only one probe at a time
    b.record_failure(15.3)  # the probe failed: open again, twice as long
    assert not b.allow(30) and b.allow(35.4)
    b.record_success(35.5)
    snap = b.snapshot()
    assert snap["state"] == "closed" and snap["trips"] == 2 and b.allow(36)


def test_a_probe_without_a_verdict_does_not_hold_the_breaker_half_open() -> None:
    b = CircuitBreaker(failure_threshold=1, open_seconds=10)
    b.record_failure(0)
    assert b.blocked_until(5) == 10 and not b.allow(5)
    assert b.blocked_until(10) is None and b.allow(10)  # the probe: refused for good, say
    assert not b.allow(15)  # its verdict may still come
    assert b.allow(20.1)  # none came: another probe
    b.record_success(20.2)
    assert b.snapshot()["state"] == "closed"


def test_breaker_orders_failures_by_when_they_were_sent_not_answered() -> None:
    b = CircuitBreaker(failure_threshold=3, open_seconds=10)
    for i in range(20):  # a burst at t=0..0.2: most are answered at once
        if i not in (3, 9, 14, 17):
            b.record_success(0.01 * i + 0.005, sent_at=0.01 * i)
    for i in (3, 9, 14, 17):  # four went unanswered: their timeouts land together at t=0.5+
        b.record_failure(0.5 + 0.01 * i, sent_at=0.01 * i)
    assert b.snapshot()["state"] == "closed" and b.failures == 0  # all older than a success
    for t in (1.0, 1.1, 1.2):  # the carrier fails what is sent after its last success
        b.record_failure(t + 0.005, sent_at=t)
    assert b.snapshot()["state"] == "open"
    b.record_failure(1.3, sent_at=1.15)  # sent before it opened: says nothing of the probe
    assert b.allow(11.3) and b.snapshot()["state"] == "half_open"
    b.record_failure(11.35, sent_at=1.18)
    assert b.snapshot()["state"] == "half_open"
    b.record_failure(11.4, sent_at=11.3)  # the probe itself failed
    assert b.snapshot()["state"] == "open"


def test_breaker_reopen_time_is_capped() -> None:
    b = CircuitBreaker(failure_threshold=1, open_seconds=10, max_open_seconds=25)
    now = 0.0
    b.record_failure(now)
    for _ in range(5):
        now = b.reopen_at or now
        assert b.allow(now)
        b.record_failure(now)
    assert (b.reopen_at or 0) - now == 25


# -- pacing ----------------------------------------------------------------------------------


@given(
    rate=st.floats(min_value=1, max_value=5000),
    arrivals=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=300),
)
def test_schedule_never_exceeds_rate_plus_burst_in_any_second(
    rate: float, arrivals: list[float]
) -> None:
    s = RateSchedule(rate)
    sends = sorted(t + s.reserve(t) for t in sorted(arrivals))
    j = 0
    for i, t in enumerate(sends):
        while sends[j] <= t - 1.0:
            j += 1
        assert i - j + 1 <= rate + s.burst + 1e-6


def test_schedule_slows_down_compounds_to_a_floor_and_recovers() -> None:
    s = RateSchedule(100)
    s.slow_down(0, 0.5, 5)
    assert s.effective_rate(1) == 50
    s.slow_down(1, 0.5, 5)
    assert s.effective_rate(2) == 25
    for _ in range(20):
        s.slow_down(2, 0.5, 5)
    assert s.effective_rate(3) == 1.0
    assert s.effective_rate(7.5) == 100


def test_unlimited_rate_never_waits() -> None:
    s = RateSchedule(0)
    assert all(s.reserve(0) == 0 for _ in range(1000))


async def test_pacer_bounds_in_flight_and_paces_sends() -> None:
    pacer = AsyncPacer(rate=200, max_in_flight=5)
    peak = 0
    starts: list[float] = []

    async def one() -> None:
        nonlocal peak
        async with pacer.slot():
            starts.append(time.monotonic())
            peak = max(peak, pacer.in_flight)
            await asyncio.sleep(0.01)

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(60)))
    elapsed = time.monotonic() - t0
    assert peak <= 5
    assert elapsed >= (60 - pacer.schedule.burst) / 200 * 0.9
    assert pacer.in_flight == 0 and pacer.waiting == 0


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    pacer = AsyncPacer(rate=0, max_in_flight=1)
    release = asyncio.Event()

    async def holder() -> None:
        async with pacer.slot():
            await release.wait()

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    assert pacer.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await h
    async with pacer.slot():  # the window is whole again
        assert pacer.in_flight == 1


# -- retry -----------------------------------------------------------------------------------


def test_retry_delays_grow_stay_capped_and_jitter() -> None:
    p = RetryPolicy(base=1, factor=2, max_delay=60, jitter="equal")
    rng = random.Random(1)
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (7, 60), (50, 60)):
        d = p.next_delay(attempt, rng)
        assert ceiling / 2 <= d <= ceiling
    full = RetryPolicy(jitter="full")
    assert {round(full.next_delay(3, rng), 3) for _ in range(20)}.__len__() > 10
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter="sometimes")
    with pytest.raises(ValueError, match="unknown retry settings"):
        RetryPolicy.from_settings({"bse": 1})


# -- routing ---------------------------------------------------------------------------------

ROUTES = [
    {"type": "otp", "country": "IN", "connectors": ["fast", "backup"]},
    {"prefix": "+9170", "connectors": ["special"]},
    {"country": ["IN"], "carrier": "Jio", "connectors": ["jio", "backup"]},
    {
        "country": "IN",
        "connectors": [{"name": "a", "weight": 70}, {"name": "b", "weight": 30}, "backup"],
    },
    {"account": "acc_vip", "connectors": ["backup"]},
]


def inp(to: str = "+919812345678", **kw: str | None) -> RoutingInput:
    base: dict[str, str | None] = {"country": "IN", "carrier": "Vi", "type": "transactional"}
    base.update(kw)
    return RoutingInput(to=to, account_id=str(base.pop("account_id", "acc_1")), **base)  # type: ignore[arg-type]


def test_first_matching_rule_wins() -> None:
    r = Router.from_settings(ROUTES)
    rng = random.Random(0)
    assert r.route_for(inp(type="otp"), rng) == ["fast", "backup"]
    assert r.route_for(inp("+917012345678"), rng) == ["special"]
    assert r.route_for(inp(carrier="Jio"), rng) == ["jio", "backup"]
    assert r.route_for(inp("+14155550123", country="US", account_id="acc_vip"), rng) == ["backup"]
    with pytest.raises(NoRoute) as exc:
        r.route_for(inp("+14155550123", country="US"), rng)
    assert "5550123" not in exc.value.detail  # masked


def test_weights_split_traffic_and_failover_follows() -> None:
    r = Router.from_settings(ROUTES)
    rng = random.Random(42)
    firsts = Counter(r.route_for(inp(), rng)[0] for _ in range(10_000))
    assert 0.67 < firsts["a"] / 10_000 < 0.73
    assert set(firsts) == {"a", "b"}
    order = r.route_for(inp(), rng)
    assert order[2] == "backup" and set(order[:2]) == {"a", "b"}


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ([{"connectors": []}], "non-empty list"),
        ([{"colour": "red", "connectors": ["a"]}], "unknown keys"),
        ([{"type": "spam", "connectors": ["a"]}], "type must be"),
        ([{"connectors": ["a", "a"]}], "listed twice"),
        ([{"connectors": [{"name": "a", "weight": -1}]}], "positive number"),
        ([{"prefix": "91x", "connectors": ["a"]}], "digits"),
    ],
)
def test_bad_routes_are_refused_clearly(routes: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Router.from_settings(routes)


def test_routes_naming_unknown_connectors_fail_validation() -> None:
    r = Router.from_settings(ROUTES)
    with pytest.raises(ValueError, match="unknown connectors"):
        r.validate(["fast", "backup"])
    r.validate(["fast", "backup", "special", "jio", "a", "b"])
    assert r.describe()[3] == "#4 when country=in -> (a:70 / b:30) -> backup"


async def test_an_otp_waiting_for_a_full_window_goes_in_before_earlier_promotions() -> None:
    pacer = AsyncPacer(rate=0, max_in_flight=1)
    order: list[str] = []
    release = asyncio.Event()

    async def send(name: str, lane: int) -> None:
        async with pacer.slot(lane):
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(send("first", 2))
    await asyncio.sleep(0)
    promos = [asyncio.create_task(send(f"promo{i}", 2)) for i in range(3)]
    await asyncio.sleep(0)
    otp = asyncio.create_task(send("otp", 0))
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(first, otp, *promos)
    assert order == ["first", "otp", "promo0", "promo1", "promo2"]
