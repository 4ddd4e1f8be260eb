"""The coordinator contract, run on the in-process coordinator and on a real Redis."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from dakghar.coord import PACING_HORIZON, Coordinator, LimitCheck, Topic, messages
from dakghar.core.ratelimit import Gcra
from dakghar.pipeline import wakeup

Pair = tuple[Coordinator, Coordinator]


async def test_limit_allows_the_burst_then_refuses_with_the_retry_after_gcra_gives(
    coordinator: Coordinator,
) -> None:
    # Rate 8 and a power-of-two clock keep Gcra's float arithmetic exact, so the two agree to
    # the microsecond the Redis script counts in.
    reference = Gcra(8, 5)
    now = 1_024.0
    decisions = []
    for _ in range(7):
        got = await coordinator.limit("k", 8, 5, now=now)
        want = reference.hit("k", now)
        assert (got.allowed, got.remaining) == (want.allowed, want.remaining)
        assert got.retry_after == pytest.approx(want.retry_after, abs=1e-5)
        decisions.append(got)
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after == pytest.approx(0.125, abs=1e-5)
    assert (await coordinator.limit("k", 8, 5, now=now + 0.1)).allowed is False
    assert (await coordinator.limit("k", 8, 5, now=now + 0.125)).allowed


async def test_a_cost_above_one_counts_as_that_many_requests(coordinator: Coordinator) -> None:
    assert (await coordinator.limit("k", 8, 5, cost=3, now=64.0)).remaining == 2
    refused = await coordinator.limit("k", 8, 5, cost=3, now=64.0)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.125, abs=1e-5)


async def test_limit_without_a_clock_refuses_until_the_next_emission(
    coordinator: Coordinator,
) -> None:
    results = [await coordinator.limit("k", 2, 3) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert 0.4 < results[3].retry_after <= 0.5


async def test_two_instances_share_one_limit(pair: Pair) -> None:
    a, b = pair
    allowed = 0
    for i in range(20):
        side = a if i % 2 else b
        allowed += (await side.limit("shared", 1, 8)).allowed
    assert allowed == 8


async def test_limit_many_checks_each_key_in_order(pair: Pair) -> None:
    a, b = pair
    checks = [LimitCheck("x", 1, 2), LimitCheck("y", 1, 1), LimitCheck("x", 1, 2)]
    first = await a.limit_many(checks)
    assert [d.allowed for d in first] == [True, True, True]
    second = await b.limit_many(checks)
    assert [d.allowed for d in second] == [False, False, False]
    assert await a.limit_many([]) == []


async def test_fanout_reaches_another_instance_within_a_second(pair: Pair) -> None:
    a, b = pair
    got: asyncio.Queue[tuple[str, bytes, float]] = asyncio.Queue()

    def note(topic: str, payload: bytes) -> None:
        got.put_nowait((topic, payload, time.monotonic()))

    sub = b.subscribe(["kill-switch", "wakeup"], note)
    await sub.ready()
    sent = time.monotonic()
    await a.publish("kill-switch", b"\x01on")
    await a.publish("unrelated", b"no")
    topic, payload, at = await asyncio.wait_for(got.get(), 1.0)
    assert (topic, payload) == ("kill-switch", b"\x01on")
    assert at - sent < 1.0
    await asyncio.sleep(0.05)
    assert got.empty()
    sub.close()


async def test_a_closed_subscription_gets_nothing_more(pair: Pair) -> None:
    a, b = pair
    got: list[bytes] = []
    kept: asyncio.Queue[bytes] = asyncio.Queue()
    gone = b.subscribe(["account-pause"], lambda t, p: got.append(p))
    stays = b.subscribe(["account-pause"], lambda t, p: kept.put_nowait(p))
    await gone.ready()
    await stays.ready()
    gone.close()
    await a.publish("account-pause", b"acc_1")
    assert await asyncio.wait_for(kept.get(), 1.0) == b"acc_1"
    assert got == []
    stays.close()


async def test_a_failing_callback_does_not_stop_the_others(pair: Pair) -> None:
    a, b = pair
    got: asyncio.Queue[bytes] = asyncio.Queue()

    def broken(topic: str, payload: bytes) -> None:
        raise RuntimeError("subscriber bug")

    first = b.subscribe(["key-revoked"], broken)
    second = b.subscribe(["key-revoked"], lambda t, p: got.put_nowait(p))
    await first.ready()
    await second.ready()
    await a.publish("key-revoked", b"key_1")
    await a.publish("key-revoked", b"key_2")
    assert await asyncio.wait_for(got.get(), 1.0) == b"key_1"
    assert await asyncio.wait_for(got.get(), 1.0) == b"key_2"


async def test_a_wakeup_hint_crosses_as_the_datagram_the_dispatcher_decodes(pair: Pair) -> None:
    a, b = pair
    got: asyncio.Queue[bytes] = asyncio.Queue()
    sub = b.subscribe([Topic.WAKEUP], lambda t, p: got.put_nowait(p))
    await sub.ready()
    for datagram in wakeup.pack({(0, "acc_1"): 1_700_000_000_000, (2, "acc_ü"): 5}):
        await a.publish(Topic.WAKEUP, datagram)
    hints = wakeup.decode(await asyncio.wait_for(got.get(), 1.0))
    assert hints == [(0, "acc_1", 1_700_000_000_000), (2, "acc_ü", 5)]


async def test_messages_iterates_over_a_subscription(pair: Pair) -> None:
    a, b = pair
    async with messages(b, [Topic.KILL_SWITCH]) as stream:
        await a.publish(Topic.KILL_SWITCH, b"on")
        await a.publish(Topic.KILL_SWITCH, b"off")
        assert await asyncio.wait_for(anext(stream), 1.0) == ("kill-switch", b"on")
        assert await asyncio.wait_for(anext(stream), 1.0) == ("kill-switch", b"off")


async def _pace(side: Coordinator, rate: float, until: float, sends: list[float]) -> None:
    """A dispatcher's loop: reserve a quarter horizon at a time, so that a stall of the loop
    (a loaded box) shorter than three quarters of the horizon loses no slot."""
    while time.monotonic() < until:
        grant = await side.reserve("carrier-a", rate, 1, max(1, int(rate * PACING_HORIZON)))
        sends.extend(grant.send_at)
        await asyncio.sleep(PACING_HORIZON / 4 if grant.send_at else grant.retry_after)


async def test_pacing_across_two_instances_stays_within_5_percent_of_the_rate(
    pair: Pair,
) -> None:
    a, b = pair
    rate, seconds = 200.0, 2.0
    for side in (a, b):  # connected, scripts loaded: the first call's set-up is not pacing
        await side.reserve("warm-up", rate, 1, 1)
    start = time.monotonic()
    sends_a: list[float] = []
    sends_b: list[float] = []
    await asyncio.gather(
        _pace(a, rate, start + seconds, sends_a), _pace(b, rate, start + seconds, sends_b)
    )
    sends = sorted(t for t in sends_a + sends_b if start <= t < start + seconds)
    assert abs(len(sends) - rate * seconds) <= 0.05 * rate * seconds, len(sends)
    # No quarter of a second carries much more than its share either.
    for i in range(8):
        window = [t for t in sends if start + i * 0.25 <= t < start + (i + 1) * 0.25]
        assert len(window) <= rate * 0.25 * 1.1 + 1
    if a is not b:
        assert sends_a and sends_b  # both processes got a share


async def test_a_reservation_never_reaches_past_the_horizon(coordinator: Coordinator) -> None:
    before = time.monotonic()
    grant = await coordinator.reserve("carrier-b", 100, 1, 50)
    after = time.monotonic()
    assert 5 <= grant.count <= 7  # 0, 10, ..., 50 ms from the call
    assert grant.send_at[-1] <= after + PACING_HORIZON + 0.001
    assert grant.send_at[-1] - before >= PACING_HORIZON - 0.01 - 0.001  # within one slot
    again = await coordinator.reserve("carrier-b", 100, 1, 50)
    # However late the second call came (a loaded box), its slots follow the first's.
    slots = grant.send_at + again.send_at
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= 0.01 - 0.005  # Redis: offsets count from each reply's arrival
    if not again.send_at:
        assert 0 < again.retry_after <= 0.01


async def test_bind_leases_never_exceed_the_slots_across_instances(pair: Pair) -> None:
    a, b = pair
    got = [await (a if i % 2 else b).acquire_bind("smsc", 3, f"owner-{i}", 5.0) for i in range(6)]
    held = [s for s in got if s is not None]
    assert sorted(held) == [0, 1, 2]
    assert got.count(None) == 3
    assert await b.acquire_bind("smsc", 3, "owner-0", 5.0) == got[0]  # its own slot, renewed
    assert await a.release_bind("smsc", got[1] or 0, "owner-5") is False  # not the owner
    assert await a.release_bind("smsc", got[1] or 0, "owner-1") is True
    assert await b.acquire_bind("smsc", 3, "owner-9", 5.0) == got[1]
    assert await b.acquire_bind("other", 1, "owner-0", 5.0) == 0  # connectors are independent


async def test_a_lease_expires_after_its_owner_stops_renewing(pair: Pair) -> None:
    a, b = pair
    assert await a.acquire_bind("smsc", 1, "dead", 0.3) == 0
    assert await b.acquire_bind("smsc", 1, "alive", 0.3) is None
    await asyncio.sleep(0.15)
    assert await a.renew_bind("smsc", 0, "dead", 0.3) is True
    await asyncio.sleep(0.2)
    assert await b.acquire_bind("smsc", 1, "alive", 0.3) is None  # renewed, still held
    await asyncio.sleep(0.35)
    assert await b.acquire_bind("smsc", 1, "alive", 5.0) == 0
    assert await a.renew_bind("smsc", 0, "dead", 0.3) is False
    assert await a.release_bind("smsc", 0, "dead") is False
    assert await b.release_bind("smsc", 0, "alive") is True


async def test_a_lowered_rate_paces_every_instance_until_it_expires(pair: Pair) -> None:
    a, b = pair
    assert (await b.reserve("carrier-c", 100, 1, 50)).rate == 100
    await a.lower_rate("carrier-c", 20, 0.5)
    await a.lower_rate("carrier-c", 50, 0.5)  # a higher rate does not undo a lower one
    await asyncio.sleep(0.06)
    grant = await b.reserve("carrier-c", 100, 1, 50)
    assert grant.rate == 20
    assert grant.count <= 2  # 50 ms apart at 20/s
    await asyncio.sleep(0.5)
    assert (await b.reserve("carrier-c", 100, 1, 50)).rate == 100


async def test_distinct_admits_known_members_and_at_most_so_many_new_ones(pair: Pair) -> None:
    a, b = pair
    for n in range(3):  # three numbers of one range, from two "processes"
        ok, _ = await (a if n % 2 else b).distinct("r", f"+91981234500{n}", 60, 3, add=True)
        assert ok
    ok, retry = await a.distinct("r", "+919812345009", 60, 3, add=False)
    assert not ok and 0 < retry <= 60
    assert (await b.distinct("r", "+919812345001", 60, 3, add=True))[0]  # a known one still
    assert (await b.distinct("other", "+919812345009", 60, 3, add=True))[0]


async def test_otp_pumping_protection_is_shared_by_the_processes(pair: Pair) -> None:
    from dakghar.errors import RateLimited
    from dakghar.otp.protection import Protection, ProtectionPolicy
    from dakghar.store.base import Account

    a, b = pair
    policy = ProtectionPolicy(prefix_max_numbers=2)
    first, second = Protection(policy, shared=a), Protection(policy, shared=b)
    account = Account(
        "acc_x", "x", 0, 1000, "IN", None, None, 10, "whsec", None, 100, 100, False, False,
        False, 30, 0,
    )  # fmt: skip
    await first.check(account, "+919812345001", 0.0, new_number=True)
    await second.check(account, "+919812345002", 0.0, new_number=True)
    with pytest.raises(RateLimited, match="pumping"):
        await first.check(account, "+919812345003", 0.0, new_number=True)
