"""The simulated carrier: an asyncio SMSC that plays a mobile operator over real SMPP sessions.

Sandbox traffic, the end-to-end tests and the benchmarks all need a carrier that answers like a
real one: binds, submit_sm_resp with an id, delivery receipts some time later, throttling, errors,
dropped links. ``Simulator`` is that carrier, built on the sans-IO ``connection.Connection`` (so it
shares framing and the state machine with our client connector), with the carrier's behaviour per
destination prefix taken from a ``SimulatorConfig`` (``simulator_config``, re-exported here).

It is the sink of throughput benchmarks, so it is written for speed: an ``asyncio.Protocol`` per
session, one ``transport.write`` per received chunk of pipelined PDUs, and one timer heap (with one
loop timer armed at a time) for delayed answers and receipts, so receipts that fall due together
go out in one write per session. Receipts go to any receiver/transceiver bind of the submitting
``system_id``; without one they wait (bounded) until one binds, and unacknowledged ones are retried.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import random
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from dakghar.observability.logging import get_logger
from dakghar.smpp import pdu as p
from dakghar.smpp.coding import DataCoding, encode_text
from dakghar.smpp.concat import Method, split_pdu
from dakghar.smpp.connection import Connection, InvalidPdu, PduReceived, Role
from dakghar.smpp.dlr import ReceiptStat, format_receipt
from dakghar.smpp.pdu import CommandStatus as S
from dakghar.smpp.simulator_config import MAGIC_DND as MAGIC_DND
from dakghar.smpp.simulator_config import MAGIC_NO_RECEIPT as MAGIC_NO_RECEIPT
from dakghar.smpp.simulator_config import MAGIC_NUMBERS as MAGIC_NUMBERS
from dakghar.smpp.simulator_config import MAGIC_REJECTED as MAGIC_REJECTED
from dakghar.smpp.simulator_config import MAGIC_THROTTLED_TWICE as MAGIC_THROTTLED_TWICE
from dakghar.smpp.simulator_config import MAGIC_UNDELIVERED as MAGIC_UNDELIVERED
from dakghar.smpp.simulator_config import Behaviour as Behaviour
from dakghar.smpp.simulator_config import SimulatorConfig as SimulatorConfig
from dakghar.smpp.simulator_config import e164 as e164
from dakghar.smpp.tlv import Tag

log = get_logger("dakghar.simulator")

SMSC_SYSTEM_ID = "DAKGHAR-SIM"  # what the simulator calls itself in bind responses

_RECEIPT_ESM_CLASS = 0x04  # SMSC delivery receipt (5.2.12)
_DELIVER_WINDOW = 1000  # deliver_sm a session may have unacknowledged at once
_TIMER_SLACK = 0.002  # deadlines this close together fire in one batch (one write per session)
_NO_ANSWER, _DROP = -1, -2  # pseudo statuses: answer nothing / drop the TCP connection
_MAX_THROTTLE_MEMORY = 100_000  # (number, text) pairs remembered for MAGIC_THROTTLED_TWICE


def masked_ip(ip: str) -> str:
    """A peer address for logs, network part only (``203.0.113.x``, ``2001:db8:0:x``)."""
    if "." in ip:
        return ip.rsplit(".", 1)[0] + ".x"
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + ":x"
    return "?"


@dataclass
class SimulatorStats:
    """Counters since start (``bound_sessions`` is a level, not a count)."""

    binds: int = 0
    submits: int = 0  # submit_sm / data_sm / submit_multi requests received
    accepted: int = 0  # messages (parts, destinations) answered with a message_id
    throttled: int = 0
    errors: int = 0
    rejected: int = 0
    timeouts: int = 0
    drops: int = 0
    receipts_sent: int = 0  # deliver_sm receipts written, retries included
    receipts_acked: int = 0
    receipts_dropped: int = 0  # discarded because too many waited for a receiver
    mo_sent: int = 0
    bound_sessions: int = 0
    connections_refused: int = 0  # closed on arrival: over max_connections(_per_ip)
    unbound_timeouts: int = 0  # closed for not binding within unbound_timeout_seconds


@dataclass(frozen=True)
class SubmitRecord:
    """One accepted message (or part) as the carrier saw it, for tests and benchmarks."""

    message_id: str
    system_id: str
    source_addr: str
    destination_addr: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    tlvs: dict[int, p.TlvValue]
    received_at: float


@dataclass(slots=True)
class _Outbound:
    """A deliver_sm (receipt or MO) owed to a system_id, until a receiver acknowledges it."""

    system_id: str
    pdu: p.DeliverSm
    receipt: bool


class _Bucket:
    """A token bucket of ``rate`` tokens/s holding at most one second's worth."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _Timers:
    """Many deadlines on one loop timer; ``after_batch`` runs once per batch (to flush writes)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, after_batch: Callable[[], None]) -> None:
        self._loop = loop
        self._after_batch = after_batch
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._counter = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")

    def push(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        due = self._loop.time() + delay
        heapq.heappush(self._heap, (due, next(self._counter), fn, arg))
        if due < self._armed_at - _TIMER_SLACK:
            self._arm(due)

    def _arm(self, due: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = due
        self._handle = self._loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._handle, self._armed_at = None, float("inf")
        heap = self._heap
        horizon = self._loop.time() + _TIMER_SLACK
        try:
            while heap and heap[0][0] <= horizon:
                _, _, fn, arg = heapq.heappop(heap)
                fn(arg)
        finally:  # one failing callback must not strand every later deadline
            self._after_batch()
            if heap and heap[0][0] < self._armed_at:
                self._arm(heap[0][0])

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._armed_at = None, float("inf")
        self._heap.clear()


class _Session(asyncio.Protocol):
    """One client TCP connection: feeds its bytes to a Connection and answers the PDUs."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.conn = Connection(Role.SMSC)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.system_id = ""
        self.mode = ""
        self.receives = False
        self.closed = False
        self.out: list[bytes] = []
        self.inflight: dict[int, _Outbound] = {}
        self.sent_order: deque[tuple[float, int]] = deque()
        self.buckets: dict[Behaviour, _Bucket] = {}
        self.gone: asyncio.Future[None] = sim.loop.create_future()
        self.ip = ""  # the peer address counted against max_connections_per_ip ("" if refused)
        self.bind_deadline: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        ip = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        sim = self.sim
        config = sim.config
        over = None
        if len(sim._sessions) >= config.max_connections:
            over = "max_connections"
        elif sim._per_ip.get(ip, 0) >= config.max_connections_per_ip:
            over = "max_connections_per_ip"
        if over is not None:
            # Refused before it costs more than this file descriptor, at debug level because a
            # flood of connections must not become a flood of log lines as well.
            self.closed = True
            sim.stats.connections_refused += 1
            log.debug("smpp connection refused", limit=over, peer=masked_ip(ip))
            self.transport.abort()
            return
        self.ip = ip
        sim._per_ip[ip] = sim._per_ip.get(ip, 0) + 1
        sim._sessions.add(self)
        self.bind_deadline = sim.loop.call_later(config.unbound_timeout_seconds, self._bind_overdue)

    def _bind_overdue(self) -> None:
        # A connection must bind soon after connecting: one that never does (an idle socket, a
        # port scanner, a peer sending only enquire_link or garbage) only holds a descriptor.
        self.bind_deadline = None
        if not self.closed and not self.conn.bound:
            self.sim.stats.unbound_timeouts += 1
            self._close("not bound in time")

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        now = self.sim.loop.time()
        for event in self.conn.receive_data(data):
            if isinstance(event, PduReceived):
                self._on_pdu(event.pdu, event.request, now)
            elif isinstance(event, InvalidPdu):
                if event.response is not None:
                    self.write(event.response)
                if event.request is not None:
                    self._delivery_failed(event.request.sequence_number)
            else:
                self._close("fatal", reason=event.reason)
            if self.closed:
                break
        self.sim._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.conn.close()
        if self.bind_deadline is not None:
            self.bind_deadline.cancel()
            self.bind_deadline = None
        if self.ip:  # a refused connection was never counted or registered
            self.sim._release_ip(self.ip)
            self.sim._forget_session(self)
        if not self.gone.done():
            self.gone.set_result(None)

    def pause_writing(self) -> None:
        # The client stopped reading: stop reading its requests until it catches up.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # --- output ---------------------------------------------------------------------------------

    def write(self, pdu: p.Pdu) -> None:
        """Queue ``pdu``; the simulator writes each session's queue once per batch."""
        if not self.out:
            self.sim._dirty.append(self)
        self.out.append(self.conn.send(pdu))

    def _close(self, why: str, **info: Any) -> None:
        """Write what is queued, then close the TCP connection."""
        if self.closed:
            return
        self.sim._flush()
        self.closed = True
        log.info(
            "smpp connection closed",
            why=why,
            peer=masked_ip(self.ip),
            system_id=self.system_id,
            **info,
        )
        if self.transport is not None:
            self.transport.close()

    def deliver(self, item: _Outbound, now: float) -> None:
        """Send a receipt or MO; it stays in flight until its deliver_sm_resp."""
        item.pdu.sequence_number = 0  # a retry is a new request with a new number
        self.write(item.pdu)
        sequence = item.pdu.sequence_number
        self.inflight[sequence] = item
        self.sent_order.append((now, sequence))
        if item.receipt:
            self.sim.stats.receipts_sent += 1
        else:
            self.sim.stats.mo_sent += 1

    @property
    def has_room(self) -> bool:
        return len(self.inflight) < _DELIVER_WINDOW and not self.closed and self.conn.can_submit

    # --- requests and responses -------------------------------------------------------------

    def _on_pdu(self, pdu: p.Pdu, request: p.Pdu | None, now: float) -> None:
        if isinstance(pdu, p.SubmitSm | p.DataSm):
            self.sim._submit(self, pdu, now)
        elif isinstance(pdu, p.DeliverSmResp | p.DataSmResp):
            self._on_delivery_resp(pdu)
        elif isinstance(pdu, p.GenericNack):
            if request is not None:
                self._delivery_failed(pdu.sequence_number)
        elif isinstance(pdu, p.EnquireLink):
            self.write(pdu.response())
        elif isinstance(pdu, p.BindTransmitter | p.BindReceiver | p.BindTransceiver):
            self._bind(pdu)
        elif isinstance(pdu, p.Unbind):
            self.write(pdu.response())
            self._close("unbind")
        elif isinstance(pdu, p.UnbindResp):
            self._close("unbound by the simulator")
        elif isinstance(pdu, p.SubmitMulti):
            self.sim._submit_multi(self, pdu, now)
        elif isinstance(pdu, p.QuerySm | p.CancelSm | p.ReplaceSm):
            # The simulator keeps no message store to query, cancel or replace in.
            refusal = {
                p.QuerySm: S.ESME_RQUERYFAIL,
                p.CancelSm: S.ESME_RCANCELFAIL,
                p.ReplaceSm: S.ESME_RREPLACEFAIL,
            }[type(pdu)]
            self.write(pdu.response(refusal))
        # Other responses (enquire_link_resp, late or unknown ones) need nothing.

    def _bind(self, pdu: p.BindTransmitter | p.BindReceiver | p.BindTransceiver) -> None:
        config, stats = self.sim.config, self.sim.stats
        status = S.ESME_ROK
        if config.system_id is not None and pdu.system_id != config.system_id:
            status = S.ESME_RINVSYSID
        elif config.password is not None and pdu.password != config.password:
            status = S.ESME_RINVPASWD
        self.mode = {
            p.BindTransmitter: "transmitter",
            p.BindReceiver: "receiver",
            p.BindTransceiver: "transceiver",
        }[type(pdu)]
        if status:
            self.write(pdu.response(status))
            log.info("smpp bind refused", system_id=pdu.system_id, peer=self.peer, status=status)
            return
        self.write(pdu.response(system_id=SMSC_SYSTEM_ID))
        self.system_id = pdu.system_id
        if self.bind_deadline is not None:
            self.bind_deadline.cancel()
            self.bind_deadline = None
        stats.binds += 1
        stats.bound_sessions += 1
        log.info("smpp bound", system_id=self.system_id, mode=self.mode, peer=self.peer)
        if not isinstance(pdu, p.BindTransmitter):
            self.receives = True
            self.sim._receivers.setdefault(self.system_id, []).append(self)
            self.sim._refill(self)

    def _on_delivery_resp(self, pdu: p.DeliverSmResp | p.DataSmResp) -> None:
        if pdu.command_status:
            self._delivery_failed(pdu.sequence_number)
            return
        item = self.inflight.pop(pdu.sequence_number, None)
        if item is not None:
            if item.receipt:
                self.sim.stats.receipts_acked += 1
            self.sim._refill(self)

    def _delivery_failed(self, sequence: int) -> None:
        item = self.inflight.pop(sequence, None)
        if item is not None:
            self.sim._retry(item)

    def sweep(self, deadline: float) -> None:
        """Give up on deliver_sm sent before ``deadline`` and still unanswered."""
        order = self.sent_order
        while order and order[0][0] <= deadline:
            _, sequence = order.popleft()
            item = self.inflight.pop(sequence, None)
            if item is not None:
                self.conn.forget(sequence)
                self.sim._retry(item)


class Simulator:
    """The simulated SMSC server; ``start()`` it, point SMPP clients at ``address``."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.stats = SimulatorStats()
        self.address: tuple[str, int] | None = None
        # Called on the loop for every accepted message part: keep it quick; it must not raise.
        self.on_submit: Callable[[SubmitRecord], None] | None = None
        self._rng = random.Random(self.config.seed)
        # Ids are unique across restarts too (a gateway keeps old ids), so not from the seed.
        self._ids = itertools.count(int.from_bytes(os.urandom(5), "big"))
        self._sessions: set[_Session] = set()
        self._per_ip: dict[str, int] = {}  # open connections by peer address
        self._receivers: dict[str, list[_Session]] = {}
        self._parked: dict[str, deque[_Outbound]] = {}
        self._dirty: list[_Session] = []
        self._throttle_memory: dict[tuple[str, bytes], int] = {}
        self._round_robin = 0
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: _Timers | None = None
        self._stopping = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the simulator is not started")
        return self._loop

    @property
    def timers(self) -> _Timers:
        if self._timers is None:
            raise RuntimeError("the simulator is not started")
        return self._timers

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, tls: ssl.SSLContext | None = None) -> tuple[str, int]:
        """Listen (over TLS with ``tls``); returns the address (the real port when 0)."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._timers = _Timers(self._loop, self._flush)
        self._server = await self._loop.create_server(
            lambda: _Session(self), self.config.host, self.config.port, ssl=tls
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = (host, port)
        self._schedule_sweep()
        log.info("simulator listening", host=host, port=port)
        return self.address

    async def stop(self) -> None:
        """Unbind every bound session (waiting briefly for unbind_resp), then close everything.

        Receipts not yet delivered are discarded: a stopped carrier owes nobody anything.
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        unbinding = []
        for session in list(self._sessions):
            if session.conn.bound and not session.closed:
                session.write(p.Unbind())
                unbinding.append(session.gone)
            else:
                session._close("simulator stopping")
        self._flush()
        if unbinding:
            await asyncio.wait(unbinding, timeout=2.0)
        for session in list(self._sessions):
            session._close("simulator stopped")
        lingering = [session.gone for session in self._sessions]
        if lingering:
            await asyncio.wait(lingering, timeout=1.0)
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.abort()  # a peer that will not read its last bytes
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.timers.cancel()
        await server.wait_closed()
        self.address = None
        self._parked.clear()
        self._receivers.clear()
        log.info("simulator stopped")

    def _schedule_sweep(self) -> None:
        interval = min(1.0, self.config.receipt_ack_timeout_ms / 4000)
        self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        deadline = self.loop.time() - self.config.receipt_ack_timeout_ms / 1000
        for session in list(self._sessions):
            session.sweep(deadline)
        self._flush()
        self._schedule_sweep()

    def _flush(self) -> None:
        """Write every session's queued PDUs, one write per session."""
        for session in self._dirty:
            if not session.closed and session.transport is not None:
                out = session.out
                session.transport.write(out[0] if len(out) == 1 else b"".join(out))
            session.out.clear()
        self._dirty.clear()

    def _release_ip(self, ip: str) -> None:
        left = self._per_ip.get(ip, 0) - 1
        if left > 0:
            self._per_ip[ip] = left
        else:
            self._per_ip.pop(ip, None)

    def _forget_session(self, session: _Session) -> None:
        self._sessions.discard(session)
        if session.system_id:
            self.stats.bound_sessions -= 1
            log.info("smpp session ended", system_id=session.system_id, peer=session.peer)
        if session.receives and not self._stopping:
            ring = self._receivers.get(session.system_id, [])
            if session in ring:
                ring.remove(session)
            # What it never acknowledged goes first to whoever receives next.
            parked = self._park_queue(session.system_id)
            parked.extendleft(reversed(session.inflight.values()))
            session.inflight.clear()
            for other in ring:
                self._refill(other)
            self._flush()

    # --- submissions --------------------------------------------------------------------------

    def _decide(
        self, session: _Session, destination: str, body: bytes, now: float
    ) -> tuple[int, ReceiptStat | None, Behaviour]:
        """(status or _NO_ANSWER/_DROP, receipt stat or None for no receipt, behaviour)."""
        behaviour = self.config.behaviour_for(destination)
        if self.config.magic_numbers and destination in MAGIC_NUMBERS:
            if destination == MAGIC_REJECTED:
                return S.ESME_RSUBMITFAIL, None, behaviour
            if destination == MAGIC_UNDELIVERED:
                return S.ESME_ROK, ReceiptStat.UNDELIV, behaviour
            if destination == MAGIC_NO_RECEIPT:
                return S.ESME_ROK, None, behaviour
            if destination == MAGIC_THROTTLED_TWICE:
                return self._throttled_twice(destination, body), ReceiptStat.DELIVRD, behaviour
        if behaviour.throttle_tps is not None:
            bucket = session.buckets.get(behaviour)
            if bucket is None:
                bucket = session.buckets[behaviour] = _Bucket(behaviour.throttle_tps, now)
            if not bucket.take(now):
                return S.ESME_RTHROTTLED, None, behaviour
        rng = self._rng
        failing = behaviour.drop_rate + behaviour.timeout_rate + behaviour.error_rate
        if failing:
            draw = rng.random()
            if draw < behaviour.drop_rate:
                return _DROP, None, behaviour
            if draw < behaviour.drop_rate + behaviour.timeout_rate:
                return _NO_ANSWER, None, behaviour
            if draw < failing:
                return S.ESME_RSYSERR, None, behaviour
        rate = behaviour.delivery_rate
        delivered = rate >= 1.0 or (rate > 0.0 and rng.random() < rate)
        return S.ESME_ROK, ReceiptStat.DELIVRD if delivered else ReceiptStat.UNDELIV, behaviour

    def _throttled_twice(self, destination: str, body: bytes) -> int:
        key = (destination, body)
        seen = self._throttle_memory.get(key, 0)
        if seen >= 2:
            del self._throttle_memory[key]
            return S.ESME_ROK
        if len(self._throttle_memory) >= _MAX_THROTTLE_MEMORY:
            self._throttle_memory.clear()
        self._throttle_memory[key] = seen + 1
        return S.ESME_RTHROTTLED

    def _submit(self, session: _Session, pdu: p.SubmitSm | p.DataSm, now: float) -> None:
        self.stats.submits += 1
        if isinstance(pdu, p.SubmitSm):
            body = pdu.short_message
        else:
            payload = pdu.tlvs.get(Tag.message_payload, b"")
            body = payload if isinstance(payload, bytes) else str(payload).encode()
        destination = e164(pdu.destination_addr)
        status, stat, behaviour = self._decide(session, destination, body, now)
        if status == _DROP:
            self.stats.drops += 1
            session._close("dropped (simulated)", dest_addr=destination)
            return
        if status == _NO_ANSWER:
            self.stats.timeouts += 1
            return
        latency = self._uniform(behaviour.accept_latency_ms)
        if status:
            self._count_refusal(status)
            self._answer(session, pdu.response(status), latency)
            return
        message_id = self._accept(session, pdu, body)
        self._answer(session, pdu.response(message_id=message_id), latency)
        if stat is not None and self._wants_receipt(pdu.registered_delivery, stat):
            delay = latency + self._uniform(behaviour.receipt_delay_ms)
            receipt = (session.system_id, message_id, pdu, stat, time.time())
            self.timers.push(delay, self._receipt_due, receipt)

    def _submit_multi(self, session: _Session, pdu: p.SubmitMulti, now: float) -> None:
        """One id for all destinations; refused ones are listed in unsuccess_smes.

        A timeout or drop drawn for one destination becomes ESME_RSYSERR for that destination.
        """
        self.stats.submits += 1
        message_id = self._next_id()
        failed: list[p.UnsuccessSme] = []
        for dest in pdu.dest_addresses:
            if isinstance(dest, p.DistributionList):
                failed.append(p.UnsuccessSme(0, 0, dest.dl_name, S.ESME_RINVDLNAME))
                continue
            destination = e164(dest.destination_addr)
            status, stat, behaviour = self._decide(session, destination, pdu.short_message, now)
            if status < 0:  # one destination cannot go unanswered or drop the link alone
                status = S.ESME_RSYSERR
            if status:
                self._count_refusal(status)
                failed.append(
                    p.UnsuccessSme(
                        dest.dest_addr_ton, dest.dest_addr_npi, dest.destination_addr, status
                    )
                )
                continue
            one = p.SubmitSm(
                source_addr_ton=pdu.source_addr_ton,
                source_addr_npi=pdu.source_addr_npi,
                source_addr=pdu.source_addr,
                dest_addr_ton=dest.dest_addr_ton,
                dest_addr_npi=dest.dest_addr_npi,
                destination_addr=dest.destination_addr,
                esm_class=pdu.esm_class,
                registered_delivery=pdu.registered_delivery,
                data_coding=pdu.data_coding,
                short_message=pdu.short_message,
                tlvs=pdu.tlvs,
            )
            self._accept(session, one, pdu.short_message, message_id)
            if stat is not None and self._wants_receipt(pdu.registered_delivery, stat):
                delay = self._uniform(behaviour.receipt_delay_ms)
                receipt = (session.system_id, message_id, one, stat, time.time())
                self.timers.push(delay, self._receipt_due, receipt)
        session.write(pdu.response(message_id=message_id, unsuccess_smes=failed))

    def _count_refusal(self, status: int) -> None:
        if status == S.ESME_RTHROTTLED:
            self.stats.throttled += 1
        elif status == S.ESME_RSYSERR:
            self.stats.errors += 1
        else:
            self.stats.rejected += 1

    def _accept(
        self,
        session: _Session,
        pdu: p.SubmitSm | p.DataSm,
        body: bytes,
        message_id: str | None = None,
    ) -> str:
        message_id = message_id or self._next_id()
        self.stats.accepted += 1
        if self.on_submit is not None:
            self.on_submit(
                SubmitRecord(
                    message_id=message_id,
                    system_id=session.system_id,
                    source_addr=pdu.source_addr,
                    destination_addr=pdu.destination_addr,
                    data_coding=pdu.data_coding,
                    esm_class=pdu.esm_class,
                    registered_delivery=pdu.registered_delivery,
                    short_message=body,
                    tlvs=dict(pdu.tlvs),
                    received_at=time.time(),
                )
            )
        return message_id

    def _answer(self, session: _Session, response: p.Pdu, latency: float) -> None:
        if latency > 0:
            self.timers.push(latency, self._late_answer, (session, response))
        else:
            session.write(response)

    @staticmethod
    def _late_answer(arg: tuple[_Session, p.Pdu]) -> None:
        session, response = arg
        if not session.closed and session.conn.bound:
            session.write(response)

    @staticmethod
    def _wants_receipt(registered_delivery: int, stat: ReceiptStat) -> bool:
        # Bits 1-0 (5.2.17): 1 = receipt on success or failure, 2 = on failure only.
        wanted = registered_delivery & 0x03
        return wanted == 1 or (wanted == 2 and stat is not ReceiptStat.DELIVRD)

    def _uniform(self, span: tuple[float, float]) -> float:
        low, high = span
        return (low if low == high else self._rng.uniform(low, high)) / 1000

    def _next_id(self) -> str:
        return f"{next(self._ids) & 0xFF_FFFF_FFFF:010x}"

    # --- receipts and MO ----------------------------------------------------------------------

    def _receipt_due(
        self, receipt: tuple[str, str, p.SubmitSm | p.DataSm, ReceiptStat, float]
    ) -> None:
        system_id, message_id, submit, stat, submitted_at = receipt
        text = format_receipt(
            message_id,
            stat,
            datetime.fromtimestamp(submitted_at, UTC),
            datetime.now(UTC),
            err="000" if stat is ReceiptStat.DELIVRD else "001",
        )
        pdu = p.DeliverSm(
            source_addr_ton=submit.dest_addr_ton,
            source_addr_npi=submit.dest_addr_npi,
            source_addr=submit.destination_addr,
            dest_addr_ton=submit.source_addr_ton,
            dest_addr_npi=submit.source_addr_npi,
            destination_addr=submit.source_addr,
            esm_class=_RECEIPT_ESM_CLASS,
            short_message=text.encode("ascii"),
            tlvs={Tag.receipted_message_id: message_id, Tag.message_state: stat.message_state},
        )
        self._dispatch(_Outbound(system_id, pdu, receipt=True))

    def _dispatch(self, item: _Outbound) -> None:
        """Hand ``item`` to a receiver of its system_id with room, or park it."""
        if self._stopping:
            return
        ring = self._receivers.get(item.system_id)
        if ring:
            self._round_robin += 1
            n = len(ring)
            for i in range(n):
                session = ring[(self._round_robin + i) % n]
                if session.has_room:
                    session.deliver(item, self.loop.time())
                    return
        parked = self._park_queue(item.system_id)
        parked.append(item)
        if len(parked) > self.config.max_pending_receipts:
            parked.popleft()
            self.stats.receipts_dropped += 1

    def _park_queue(self, system_id: str) -> deque[_Outbound]:
        queue = self._parked.get(system_id)
        if queue is None:
            queue = self._parked[system_id] = deque()
        return queue

    def _refill(self, session: _Session) -> None:
        """Send parked deliveries to ``session`` while it has room."""
        parked = self._parked.get(session.system_id)
        if not parked:
            return
        now = self.loop.time()
        while parked and session.has_room:
            session.deliver(parked.popleft(), now)

    def _retry(self, item: _Outbound) -> None:
        if not self._stopping:
            self.timers.push(self.config.receipt_retry_ms / 1000, self._dispatch, item)

    async def send_mo(self, system_id: str, source: str, destination: str, text: str) -> None:
        """Deliver an inbound (mobile-originated) message to ``system_id``'s receivers.

        GSM 7-bit when the text allows it, else UCS-2; long texts go as UDH-concatenated parts.
        With no receiver bound, the parts wait like receipts do.
        """
        try:
            coding, payload = DataCoding.SMSC_DEFAULT, encode_text(text, DataCoding.SMSC_DEFAULT)
        except ValueError:
            coding, payload = DataCoding.UCS2, encode_text(text, DataCoding.UCS2)
        template = p.DeliverSm(
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr=source.removeprefix("+"),
            dest_addr_ton=1 if destination.startswith("+") else 0,
            dest_addr_npi=1 if destination.startswith("+") else 0,
            destination_addr=destination.removeprefix("+"),
            data_coding=coding,
        )
        parts = split_pdu(template, payload, Method.UDH8, ref=self._rng.randrange(256))
        for part in parts:
            self._dispatch(_Outbound(system_id, part, receipt=False))
        self._flush()
        log.info("mo queued", system_id=system_id, source_addr=e164(source), parts=len(parts))
