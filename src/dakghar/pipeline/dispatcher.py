"""The dispatcher: claims queued messages and drives each one to a carrier.

Lanes are strict priorities (otp > transactional > promotional); inside a lane, accounts take
turns, so one account's million-message campaign never starves another's notifications. Claims
are atomic in the store and carry their owner: each dispatcher registers in the store and
heartbeats, a dead one's claims return to the queue (never a live one's), every later write of a
claimed message is fenced on its owner, and a dispatcher that cannot heartbeat stops sending.
Each message goes through its route's connectors in order (the simulator for sandbox keys);
temporary failures are retried with backoff (``pipeline.retry``), moving on when a connector
keeps failing or its circuit breaker is open; permanent ones fail at once, refunding what was
never sent. Reports from connectors settle messages through the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dakghar.connectors.base import Connector, ConnectorError, Outbound, Report
from dakghar.core.ids import new_id
from dakghar.core.message import LANES, ErrorCode, Lane, Status
from dakghar.observability.logging import get_logger
from dakghar.pipeline.batching import BUSY_GAP, Coalescer
from dakghar.pipeline.breaker import CircuitBreaker
from dakghar.pipeline.pacing import AsyncPacer, FleetPacer
from dakghar.pipeline.retry import RetryPolicy
from dakghar.pipeline.routing import SANDBOX_CONNECTOR, NoRoute, Router, RoutingInput
from dakghar.pipeline.switches import Switchboard
from dakghar.pipeline.wakeup import collect
from dakghar.store.base import (
    DEAD_AFTER_MS,
    HEARTBEAT_EVERY_S,
    MessageRow,
    Sent,
    StatusChange,
    Store,
    now_ms,
)

log = get_logger("dakghar.dispatcher")
# The most urgent lane (OTP) has a claim loop of its own; the bulk loop claims the others.
URGENT = LANES[0]
BULK = LANES[1:]
# While no carrier can take live traffic, how often live messages past validity are looked for
# (a scan of each waiting account's queue) to be expired.
EXPIRY_SCAN_S = 10.0
__all__ = ["SANDBOX_CONNECTOR", "Dispatcher", "DispatcherStats"]


@dataclass
class DispatcherStats:
    """Counters for metrics and tests."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reports: int = 0
    reclaimed: int = 0
    expired: int = 0
    fenced: int = 0  # times this dispatcher stopped sending for want of a heartbeat
    by_connector: dict[str, int] = field(default_factory=dict)


def _claim_budget(connector: Connector) -> int:
    window = max(1, connector.max_in_flight)
    if connector.rate_per_second <= 0:
        return window
    return min(window, max(8, int(connector.rate_per_second * 0.2)))


class Dispatcher:
    """Moves messages from the queue to connectors."""

    def __init__(
        self,
        store: Store,
        connectors: dict[str, Connector],
        *,
        router: Router | None = None,
        switches: Switchboard | None = None,
        policy: RetryPolicy | None = None,
        lease_ms: int = 60_000,
        sweep_interval: float = 0.5,
        scan_interval: float = 2.0,
        rng: random.Random | None = None,
        on_change: Callable[[Sequence[MessageRow | None]], None] | None = None,
        exclusive: bool = False,
        fleet_pacer: Any = None,
    ) -> None:
        self.store = store
        self.connectors = connectors
        # The connectors that carry live traffic (all but the simulator), for readiness.
        self._live = [name for name in connectors if name != SANDBOX_CONNECTOR]
        self.router = router
        self.switches = switches or Switchboard(store)
        self.policy = policy or RetryPolicy()
        self.lease_ms = lease_ms
        self.sweep_interval = sweep_interval
        self.scan_interval = scan_interval
        self.rng = rng or random.Random()
        self.on_change = on_change
        # The only dispatcher that can run on this store (the embedded store's dispatcher lock
        # says so): every claim but its own is an orphan. Otherwise only dead owners' are.
        self.exclusive = exclusive
        self.owner = new_id("dsp")
        # False while the store has not heard this dispatcher's heartbeat recently enough for
        # the fleet to count it alive: it claims and sends nothing then (its claims may be
        # another's by now).
        self.alive = False
        self._last_beat = 0.0
        self.peers = 1  # dispatchers the register counted alive at the last heartbeat
        self.breakers = {name: CircuitBreaker() for name in connectors}
        # With a shared pacer (Redis), a connector's rate is the whole fleet's.
        self.pacers: dict[str, AsyncPacer] = {
            name: FleetPacer(
                name, c.rate_per_second, c.max_in_flight, fleet_pacer, peers=lambda: self.peers
            )
            if fleet_pacer is not None and c.rate_per_second > 0
            else AsyncPacer(c.rate_per_second, c.max_in_flight)
            for name, c in connectors.items()
        }
        # How many messages may be claimed and not yet finished. Bounded by the connectors'
        # windows and by what their rate limits can send in ~0.2 s: anything more would wait
        # in a pacer queue, where a newly arrived OTP could not overtake it.
        self.capacity = max(64, sum(_claim_budget(c) for c in connectors.values()))
        # Claimed ahead of need: a slot freed by a carrier's answer is refilled from memory at
        # once, not after a claim's round trip through the store. Kept per lane, so the next
        # free slot always goes to the most urgent message claimed.
        self.ahead = self.capacity
        self._ready: dict[int, deque[MessageRow]] = {lane: deque() for lane in LANES}
        self._buffered = 0
        # One store write for many messages' results (pipeline.batching).
        # A "sent" holds nothing up (its window slot is already free): it lingers for company.
        # A receipt does not: the carrier waits for its answer, which follows the commit.
        self._mark_sent = Coalescer(store.mark_sent_many, linger=BUSY_GAP / 4)
        self._reports = Coalescer(store.report_many)
        self.stats = DispatcherStats()
        # lane -> account -> when its earliest queued message is due (ms)
        self._active: dict[int, dict[str, int]] = {lane: {} for lane in LANES}
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # the most urgent lane has messages waiting
        self._sandbox_only = False  # the last claim took sandbox messages only (_live_blocked)
        self._expiry_due = 0.0  # when a sandbox-only claim next also takes expired live ones
        self.expiry_scan = EXPIRY_SCAN_S
        self._tasks: list[asyncio.Task[Any]] = []
        self._sends: set[asyncio.Task[None]] = set()
        self._running = False

    # -- feeding -----------------------------------------------------------------------------

    def notify(self, rows: Sequence[MessageRow]) -> None:
        """Newly queued messages (an accept listener): remember their accounts and wake up."""
        earliest: dict[tuple[int, str], int] = {}
        collect(rows, earliest)  # the same reading of rows as the other process's hints
        self.merge([(lane, account, due) for (lane, account), due in earliest.items()])
        self._wake.set()

    def merge(self, waiting: Sequence[tuple[int, str, int]]) -> None:
        """Accounts with messages waiting, as (lane, account, earliest due): from a scan of the
        queue, or from another process's hints (``pipeline.wakeup``)."""
        for lane, account, due in waiting:
            active = self._active.get(lane)
            if active is None:
                continue
            if active.get(account, due + 1) > due:
                active[account] = due
            if lane == URGENT:
                self._urgent.set()
        if waiting:
            self._wake.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connectors, recover the queue's state, and begin dispatching."""
        for name, connector in self.connectors.items():
            await connector.start(self._reporter(name))
        await self._register()
        # Claims of dispatchers that died (kill -9, power loss) go back to the queue now; on
        # the embedded store, which has one dispatcher, that is every claim found at start.
        while True:
            moved = await self.store.sweep(owner=self.owner, alone=self.exclusive)
            self.stats.reclaimed += len(moved["reclaimed"])
            if len(moved["reclaimed"]) < 5000:
                break
        self.merge(await self.store.waiting_accounts())
        await self.switches.refresh()
        self._running = True
        self._tasks = [
            asyncio.create_task(
                self._claim_loop(BULK, self._wake, self._room), name="dakghar-claim"
            ),
            asyncio.create_task(
                self._claim_loop((URGENT,), self._urgent, self._urgent_room),
                name="dakghar-claim-urgent",
            ),
            asyncio.create_task(self._sweep_loop(), name="dakghar-sweep"),
            asyncio.create_task(self._heartbeat_loop(), name="dakghar-heartbeat"),
        ]

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop claiming, let in-flight sends finish, stop connectors."""
        self._running = False
        self._wake.set()
        self._urgent.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        buffered = [row for lane in self._ready.values() for row in lane]
        for lane in self._ready.values():
            lane.clear()
        self._buffered = 0
        if buffered:
            await self._release([r.id for r in buffered])
        if self._sends:
            await asyncio.wait(self._sends, timeout=drain_timeout)
        await self._mark_sent.close()
        await self._reports.close()
        for connector in self.connectors.values():
            await connector.stop()
        with contextlib.suppress(Exception):  # else the fleet finds it dead in DEAD_AFTER_MS
            await self.store.unregister_dispatcher(self.owner)

    # -- the fleet's register ----------------------------------------------------------------

    async def _register(self) -> None:
        self.owner = new_id("dsp")
        await self.store.register_dispatcher(self.owner, socket.gethostname(), os.getpid())
        self.peers = max(1, await self.store.heartbeat(self.owner))
        self.alive = True
        self._last_beat = time.monotonic()

    async def _heartbeat_loop(self) -> None:
        while self._running:
            await asyncio.sleep(HEARTBEAT_EVERY_S)
            try:
                peers = await self.store.heartbeat(self.owner)
                if peers:
                    self._last_beat = time.monotonic()
                    self.alive = True
                    self.peers = peers
                else:
                    # The fleet declared this dispatcher dead and rescued its claims: drop what
                    # is buffered (theirs now) and join again under a new name.
                    log.warning("declared dead by the fleet; registering again", owner=self.owner)
                    self._fence()
                    await self._register()
            except Exception:
                log.exception("heartbeat failed", owner=self.owner)
            if self.alive and time.monotonic() - self._last_beat > DEAD_AFTER_MS / 2000:
                log.error("no heartbeat for too long; sending stops", owner=self.owner)
                self._fence()

    def _fence(self) -> None:
        """Stop sending: buffered claims are forgotten (the sweep of a live dispatcher returns
        them to the queue once this one counts as dead)."""
        if self.alive:
            self.stats.fenced += 1
        self.alive = False
        for lane in self._ready.values():
            lane.clear()
        self._buffered = 0

    @property
    def ready(self) -> bool:
        """A live connector can take messages; with none configured, the simulator can.

        The simulator carries only sandbox traffic, so it must not make a gateway whose every
        carrier is down look ready.
        """
        return any(self.connectors[name].ready for name in self._live or self.connectors)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(
        self, lanes: Sequence[int], wake: asyncio.Event, room: Callable[[], int]
    ) -> None:
        """Claim ``lanes`` while there is ``room``, else wait for ``wake`` (or the next due).

        Two of these run: the bulk lanes within the claim-ahead budget (:meth:`_room`), and the
        most urgent lane (OTP) apart from them, so an OTP is claimed as soon as its hint
        arrives, not after the bulk's claim in progress returns, nor once a buffer full of
        promotions has room again. The OTP loop's budget: up to ``capacity`` claimed and
        waiting; the store runs its claims on its express writer where it has one."""
        # When the last bulk claim emptied the queue (traffic arrives slower than it is sent),
        # the next waits until BUSY_GAP after it while there is work in hand, so that it takes
        # more than the one or two messages a wake-up announces. With a backlog there is no
        # wait: claims then fill the room whenever it opens. OTP claims never wait.
        gap = BUSY_GAP if URGENT not in lanes else 0.0
        last, drained = 0.0, False
        while self._running:
            wait = last + gap - time.monotonic()
            if drained and wait > 0 and (self._in_flight or self._buffered):
                await asyncio.sleep(wait)
            free = room()
            last = time.monotonic()
            try:
                claimed, drained = await self._claim_once(lanes, free) if free > 0 else ([], True)
            except Exception:  # the loop must outlive a bad moment in the store
                log.exception("claim failed", lanes=[Lane(lane).label for lane in lanes])
                await asyncio.sleep(0.5)
                continue
            for row in claimed:
                self._ready[row.lane].append(row)
            self._buffered += len(claimed)
            self._start_sends()
            if not claimed or room() <= 0:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._idle_wait(lanes))

    def _urgent_room(self) -> int:
        return self.capacity - len(self._ready[URGENT])

    def _room(self) -> int:
        """How many more messages may be claimed: free slots plus the claim-ahead buffer."""
        return self.capacity + self.ahead - self._in_flight - self._buffered

    def _start_sends(self) -> None:
        """Fill free slots from the claimed buffer, most urgent lane first."""
        if not self._buffered:
            return
        paused = self.switches.global_paused
        give_back: list[MessageRow] = []
        loop = asyncio.get_running_loop()  # once: on 3.11 each lookup is a getpid system call
        for lane in LANES:
            ready = self._ready[lane]
            while ready and (paused or self._in_flight < self.capacity):
                row = ready.popleft()
                self._buffered -= 1
                if paused or self.switches.account_paused(row.account_id):
                    give_back.append(row)
                    continue
                self._in_flight += 1
                task = loop.create_task(self._send(row))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
        if give_back:
            self._give_back(give_back)

    def _give_back(self, rows: Sequence[MessageRow]) -> None:
        """Return claimed messages that must not be sent now (paused) to the queue."""
        task = asyncio.create_task(self._release([r.id for r in rows]))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        for r in rows:
            active = self._active[r.lane]
            due = now_ms() + 1000
            active[r.account_id] = min(active.get(r.account_id, due), due)

    async def _release(self, ids: Sequence[str]) -> None:
        try:
            await self.store.release(ids, owner=self.owner)
        except Exception:  # their leases run out and the sweep returns them instead
            log.exception("could not return claimed messages to the queue", count=len(ids))

    def _idle_wait(self, lanes: Sequence[int] = LANES) -> float:
        now = now_ms()
        dues = [due for lane in lanes for due in self._active[lane].values()]
        if not dues:
            return 1.0
        return min(1.0, max(0.005, (min(dues) - now) / 1000))

    def _usable(self, name: str) -> bool:
        """Connector ``name`` exists, is bound (its bind slots not all held by other processes
        of the fleet) and is not paused; its breaker is asked apart."""
        connector = self.connectors.get(name)
        return (
            connector is not None and connector.ready and not self.switches.connector_paused(name)
        )

    def _can_take(self, name: str, now: float) -> bool:
        """Whether connector ``name`` could take a message now: usable, breaker not open."""
        return self._usable(name) and self.breakers[name].blocked_until(now) is None

    def _live_blocked(self, now: float) -> bool:
        """Live connectors are configured and none can take a message now (not usable, or its
        circuit breaker open): live traffic claimed now could only be put back, so only
        sandbox messages are claimed."""
        return bool(self._live) and not any(self._can_take(n, now) for n in self._live)

    def _wait_for_connector(self, route: list[str]) -> float:
        """Seconds until a connector of ``route`` may take a message again: when the first
        open breaker of the route lets its probe through, if breakers are all that stand in
        the way; otherwise (not bound, paused) a short look again."""
        now = time.monotonic()
        reopen: list[float] = []
        for name in route:
            if not self._usable(name):
                continue
            until = self.breakers[name].blocked_until(now)
            if until is None:  # open no longer, or half open with its probe taken
                return self.rng.uniform(0.5, 1.0)
            reopen.append(until - now)
        if reopen:  # spread over half a second: only the first few become the probe
            return min(reopen) + self.rng.uniform(0.05, 0.5)
        return self.rng.uniform(0.5, 1.0)

    async def _claim_once(self, lanes: Sequence[int], free: int) -> tuple[list[MessageRow], bool]:
        """Claim up to ``free`` messages of ``lanes``: the rows, and whether every account
        asked ran dry (nothing due is left behind)."""
        now_mono = time.monotonic()
        sandbox_only = self._live_blocked(now_mono)
        # When the simulator cannot take sandbox traffic either (paused, unbound, breaker
        # open), whatever is claimed could only wait: nothing is, and messages stay queued.
        all_blocked = (sandbox_only or not self._live) and not self._can_take(
            SANDBOX_CONNECTOR, now_mono
        )
        if self.switches.global_paused or not self.alive or all_blocked:
            return [], True
        # Live messages wait in the queue while no carrier can take them, but not past their
        # validity: now and then the claim also takes those, and _send_one expires them (with
        # their refund and final webhook) as it would have when a carrier was there.
        or_expired = sandbox_only and now_mono >= self._expiry_due
        if self._sandbox_only and not sandbox_only:
            # Live traffic can flow again: the accounts a sandbox-only claim found dry of
            # sandbox messages may still have live ones waiting.
            self.merge(await self.store.waiting_accounts())
        self._sandbox_only = sandbox_only
        claimed: list[MessageRow] = []
        drained = True
        now = now_ms()
        for lane in lanes:
            if free <= 0:
                break
            active = self._active[lane]
            accounts = [
                a for a, due in active.items() if due <= now and not self.switches.account_paused(a)
            ]
            if not accounts:
                continue
            self.rng.shuffle(accounts)  # fair turns without a persistent cursor
            per = max(1, min(500, free // len(accounts)))
            accounts = accounts[: max(1, free // per)]
            rows, dry = await self.store.claim(
                lane, accounts, per, lease_ms=self.lease_ms, owner=self.owner,
                sandbox_only=sandbox_only, or_expired=or_expired,
            )  # fmt: skip
            if or_expired:  # looked for in the accounts waiting now; again in expiry_scan
                self._expiry_due = time.monotonic() + self.expiry_scan
            drained = drained and len(dry) == len(accounts)
            for account, nxt in dry.items():
                if nxt is None:
                    active.pop(account, None)
                else:
                    active[account] = nxt
            claimed += rows
            free -= len(rows)
        self.stats.claimed += len(claimed)
        return claimed, drained

    # -- sending -----------------------------------------------------------------------------

    def _route(self, row: MessageRow) -> list[str]:
        if row.sandbox:
            return [SANDBOX_CONNECTOR]
        if self.router is None:
            raise NoRoute("no routes are configured for live traffic")
        return self.router.route_for(
            RoutingInput(
                to=row.to_number,
                country=row.country,
                carrier=row.carrier,
                type=row.type,
                account_id=row.account_id,
            ),
            # the same message always gets the same weighted pick
            random.Random(row.id) if self.router.draws else self.rng,
        )

    def _pick(self, route: list[str], step: int, *, sandbox: bool) -> tuple[int, str] | None:
        now = time.monotonic()
        for i in range(len(route)):
            idx = (step + i) % len(route)
            name = route[idx]
            if (name == SANDBOX_CONNECTOR) != sandbox:
                continue  # live traffic never reaches the simulator, nor sandbox a carrier
            if not self._usable(name) or not self.breakers[name].allow(now):
                continue
            return idx, name
        return None

    async def _send(self, row: MessageRow) -> None:
        freed = False

        def free_slot() -> None:
            nonlocal freed
            if not freed:
                freed = True
                self._in_flight -= 1
                self._start_sends()
                self._wake.set()

        try:
            await self._send_one(row, free_slot)
        except Exception:
            log.exception("send failed unexpectedly", message_id=row.id)
        finally:
            free_slot()

    async def _send_one(self, row: MessageRow, free_slot: Callable[[], None]) -> None:
        if not self.alive or row.lease_owner != self.owner:
            return  # claimed under a name the fleet has since declared dead: not ours to send
        if row.expires_at <= now_ms():
            await self._finish(row, Status.EXPIRED, ErrorCode.EXPIRED,
                               "validity ended before it could be sent", refund=True)  # fmt: skip
            return
        try:
            route = self._route(row)
        except NoRoute as exc:
            await self._finish(row, Status.FAILED, ErrorCode.NO_ROUTE, exc.detail, refund=True)
            return
        picked = self._pick(route, row.route_step, sandbox=row.sandbox)
        if picked is None:
            # Paused, open breaker or not bound: nothing was tried, so the attempt does not
            # count (no backoff grows from it) and the message looks again when a connector
            # may be back, not every second in between.
            await self._retry(row, route, row.route_step, "no connector of the route is available",
                              move_on=False, delay=self._wait_for_connector(route),
                              tried=False)  # fmt: skip
            return
        step, name = picked
        connector = self.connectors[name]
        outbound = Outbound(
            message_id=row.id,
            to=row.to_number,
            sender=row.sender,
            body=row.body or "",
            encoding=row.encoding,
            type=row.type,
            validity_seconds=max(1, (row.expires_at - now_ms()) // 1000),
            template_id=row.template_id,
            entity_id=row.entity_id,
        )
        sent_at = 0.0
        try:
            async with self.pacers[name].slot(row.lane):  # the lane's priority at the window
                sent_at = time.monotonic()
                accepted = await connector.submit(outbound)
        except ConnectorError as exc:
            await self._failed(row, route, step, name, exc, sent_at)
            return
        self.breakers[name].record_success(time.monotonic(), sent_at)
        self.stats.sent += 1
        self.stats.by_connector[name] = self.stats.by_connector.get(name, 0) + 1
        # The carrier has answered: the slot is free for the next message now, while this one's
        # "sent" is written together with others' (the claim lease covers a crash in between).
        free_slot()
        sent = await self._mark_sent(
            Sent(row.id, name, accepted.provider_ids, accepted.parts, self.owner, now_ms())
        )
        self._changed([sent])

    async def _failed(
        self,
        row: MessageRow,
        route: list[str],
        step: int,
        name: str,
        exc: ConnectorError,
        sent_at: float,
    ) -> None:
        """A submit to ``name`` (sent at ``sent_at``, monotonic) failed: fail or retry."""
        now = time.monotonic()
        if exc.slow_down:
            self.pacers[name].slow_down(now, 0.5, 5.0)
            # "Throttled" is an answer: the carrier is up, so the pacer slows down, and the
            # breaker counts it as a success (a half-open breaker's probe closes it).
            self.breakers[name].record_success(now, sent_at)
        if not exc.temporary:
            await self._finish(row, Status.FAILED, exc.error_code, exc.detail,
                               refund=not exc.maybe_sent, connector=name)  # fmt: skip
            return
        if not exc.slow_down:
            self.breakers[name].record_failure(now, sent_at)
        await self._retry(row, route, step, f"{exc.detail} ({name})", move_on=True)

    async def _retry(
        self,
        row: MessageRow,
        route: list[str],
        step: int,
        detail: str,
        *,
        move_on: bool,
        delay: float | None = None,
        tried: bool = True,
    ) -> None:
        """Give the claim back for another go after ``delay`` (default: the backoff of the
        attempts so far). ``tried=False``: nothing reached a carrier, so the claim's attempt is
        taken back and the event says the message waits, not that it was retried."""
        now = now_ms()
        if not tried:
            attempts_here = row.step_attempts
        else:
            attempts_here = row.step_attempts + 1 if step == row.route_step else 1
        if move_on and attempts_here >= self.policy.max_attempts_per_connector and len(route) > 1:
            step, attempts_here = (step + 1) % len(route), 0
        if delay is None:
            delay = self.policy.next_delay(max(1, row.attempts), self.rng)
        delay_ms = int(delay * 1000)
        due = now + delay_ms
        if due >= row.expires_at:
            await self._finish(row, Status.EXPIRED, ErrorCode.EXPIRED,
                               f"gave up before validity ended: {detail}", refund=True)  # fmt: skip
            return
        if tried:
            self.stats.retried += 1
        # Not a move back to "queued" (API.md: status never moves backwards): the message stays
        # "sending", loses its lease so the queue can hand it out again, and the attempt is an
        # event of its own.
        fields: dict[str, object] = {
            "next_attempt_at": due,
            "route_step": step,
            "step_attempts": attempts_here,
            "lease_until": None,
        }
        if tried:
            note = f"retry {row.attempts} in {delay:.1f} s: {detail}"
        else:
            note = f"waiting {delay:.1f} s: {detail}"
            fields["attempts"] = max(0, row.attempts - 1)
        change = StatusChange(row.id, Status.SENDING.value, detail=note, fields=fields,
                              owner=self.owner)  # fmt: skip
        self._changed(await self.store.apply([change]))
        active = self._active[row.lane]
        active[row.account_id] = min(active.get(row.account_id, due), due)

    async def _finish(
        self,
        row: MessageRow,
        status: Status,
        error_code: str,
        detail: str,
        *,
        refund: bool,
        connector: str | None = None,
    ) -> None:
        self.stats.failed += 1
        fields = {"connector": connector} if connector else {}
        change = StatusChange(row.id, status.value, error_code=str(error_code), detail=detail,
                              refund=refund, fields=fields, owner=self.owner)  # fmt: skip
        self._changed(await self.store.apply([change]))

    # -- reports and time --------------------------------------------------------------------

    async def report(self, connector: str, report: Report) -> MessageRow | None:
        """Settle a message from a delivery report (from a connector or an HTTP callback).

        Idempotent: a report for a message already in a final state changes nothing, and one
        that arrives before the submit's answer is kept until the message is marked sent.
        """
        change = StatusChange("", report.status, error_code=report.error_code,
                              detail=report.detail, at=report.at)  # fmt: skip
        self.stats.reports += 1
        row = await self._reports((connector, report.provider_id, change))
        self._changed([row])
        return row

    def _reporter(self, name: str) -> Callable[[Report], Any]:
        async def on_report(report: Report) -> None:
            await self.report(name, report)

        return on_report

    async def _sweep_loop(self) -> None:
        last_scan = time.monotonic()
        while self._running:
            try:
                moved = await self.store.sweep(owner=self.owner, alone=self.exclusive)
                await self.switches.refresh()
                if time.monotonic() - last_scan >= self.scan_interval:
                    # Messages queued by another process (the CLI, a campaign import) announce
                    # themselves to nobody: look for waiting accounts now and then.
                    last_scan = time.monotonic()
                    self.merge(await self.store.waiting_accounts())
            except Exception:
                log.exception("sweep failed")
            else:
                self.notify(moved["released"] + moved["reclaimed"])
                self.stats.reclaimed += len(moved["reclaimed"])
                self.stats.expired += len(moved["expired"])
                self._changed(moved["expired"])
            await asyncio.sleep(self.sweep_interval)

    def _changed(self, rows: Sequence[MessageRow | None]) -> None:
        if self.on_change is not None and any(rows):
            self.on_change(rows)

    def state(self) -> dict[str, Any]:
        """Connector, breaker and queue state for metrics, readiness and the CLI."""
        return {
            "owner": self.owner,
            "alive": self.alive,
            "peers": self.peers,
            "in_flight": self._in_flight,
            "claimed_ahead": self._buffered,
            "live_blocked": self._sandbox_only,
            "active_accounts": {lane: len(a) for lane, a in self._active.items()},
            "connectors": {
                name: {**c.state(), "ready": c.ready, "breaker": self.breakers[name].snapshot()}
                for name, c in self.connectors.items()
            },
            "stats": self.stats.__dict__,
        }
