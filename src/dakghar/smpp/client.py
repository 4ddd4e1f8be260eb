"""The asyncio SMPP client: one bind to an SMSC, kept up, windowed, with timeouts.

Built on the sans-IO :class:`~dakghar.smpp.connection.Connection`, which frames, numbers and
matches PDUs; this module owns the socket and every timer:

- connect and bind (transceiver, transmitter or receiver) with a timeout, and reconnect with
  exponential backoff and jitter for as long as the client runs;
- a send window: at most ``window`` requests await their response; each has its own timeout,
  after which its caller gets :class:`SmppTimeout` and the sequence number is forgotten;
- ``enquire_link`` every ``enquire_link_interval`` seconds; a link that does not answer is
  dropped and rebuilt;
- inbound ``deliver_sm``/``data_sm`` (receipts and mobile-originated messages) go to an async
  callback, and the ``*_resp`` is written only after the callback returns, so whatever it stores
  is durable before the SMSC forgets the receipt; a failing callback answers ``ESME_RX_T_APPN``
  (temporary) and the SMSC sends it again;
- ``stop()`` refuses new submits, waits (bounded) for the window to drain, unbinds and closes;
- with an ``ssl`` context the connection is TLS (SMPP over TLS, as carriers offer it on a port
  of their own), the host name sent for SNI and checked against the certificate when the
  context checks host names; the handshake counts against ``bind_timeout``, and a certificate
  that fails verification is a failed bind like any other, retried with backoff.

A request goes out the moment it is made (a freed window slot is refilled without waiting
for the loop's next turn). Responses to the SMSC's requests are not urgent: those of one turn
of the loop (the receipts of one store commit) go out together in one ``write`` at the next.
A non-zero ``command_status`` in a response is not an exception here: the caller gets the
response PDU and decides (the connector maps statuses to temporary or permanent failures).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl as tls
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from dakghar.observability.logging import get_logger
from dakghar.smpp import pdu as p
from dakghar.smpp.connection import Connection, FatalError, InvalidPdu, PduReceived, Role
from dakghar.smpp.errors import ProtocolViolation
from dakghar.smpp.pdu import CommandId as C
from dakghar.smpp.pdu import CommandStatus as S

log = get_logger("dakghar.smpp.client")

DeliverHandler = Callable[[p.DeliverSm | p.DataSm], Awaitable[int]]
BIND_MODES = {
    "transceiver": p.BindTransceiver,
    "transmitter": p.BindTransmitter,
    "receiver": p.BindReceiver,
}


class SmppError(Exception):
    """A request that got no usable answer."""

    maybe_sent = False


class SmppNotBound(SmppError):
    """No bind is up (connecting, reconnecting or stopped); nothing was sent."""


class SmppTimeout(SmppError):
    """No response within the timeout; the SMSC may have the request."""

    maybe_sent = True


class SmppConnectionLost(SmppError):
    """The connection went away with the request outstanding; the SMSC may have it."""

    maybe_sent = True


class _Protocol(asyncio.Protocol):
    def __init__(self, client: SmppClient) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client._on_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._on_lost(self, exc)


class SmppClient:
    """One SMPP bind, kept up until :meth:`stop`."""

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        mode: str = "transceiver",
        window: int = 64,
        request_timeout: float = 10.0,
        bind_timeout: float = 10.0,
        enquire_link_interval: float = 30.0,
        reconnect_min: float = 0.2,
        reconnect_max: float = 30.0,
        on_deliver: DeliverHandler | None = None,
        name: str = "smpp",
        ssl: tls.SSLContext | None = None,
    ) -> None:
        if mode not in BIND_MODES:
            raise ValueError(f"bind mode must be one of {sorted(BIND_MODES)}")
        self.host, self.port = host, port
        self.system_id, self.password, self.system_type = system_id, password, system_type
        self.mode = mode
        self.window = max(1, window)
        self.request_timeout = request_timeout
        self.bind_timeout = bind_timeout
        self.enquire_link_interval = enquire_link_interval
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.on_deliver = on_deliver
        self.name = name
        self.ssl = ssl
        self.counters = {
            "submitted": 0,
            "responses": 0,
            "timeouts": 0,
            "throttled": 0,
            "reconnects": 0,
            "delivered_in": 0,
            "binds": 0,
        }
        self._conn: Connection | None = None
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._pending: dict[int, tuple[asyncio.Future[p.Pdu], asyncio.TimerHandle]] = {}
        self._slots = asyncio.Semaphore(self.window)
        self._bound = asyncio.Event()
        self._lost: asyncio.Event = asyncio.Event()
        self._running = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._inbound: set[asyncio.Task[None]] = set()
        self._last_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the connection's, once connecting
        # Responses to the SMSC's requests waiting for the next turn of the loop, and the
        # transport they were made for (they are dropped if it is gone by then: the SMSC sends
        # an unanswered deliver_sm again).
        self._answers: list[bytes] = []
        self._answers_to: asyncio.Transport | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting (in the background; ``wait_bound`` waits for the bind)."""
        self._running = True
        self._task = asyncio.create_task(self._run(), name=f"smpp-{self.name}")

    async def wait_bound(self, timeout: float | None = None) -> bool:
        """True once bound (False if ``timeout`` passed first)."""
        try:
            await asyncio.wait_for(self._bound.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Refuse new submits, let the window drain, unbind, close."""
        self._stopping = True
        deadline = asyncio.get_running_loop().time() + drain_timeout
        while self._pending and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        if self._inbound:
            await asyncio.wait(self._inbound, timeout=max(0.1, drain_timeout / 2))
        self._flush_answers()
        self._running = False
        if self.bound:
            with contextlib.suppress(SmppError, ProtocolViolation):
                await self._request(p.Unbind(), timeout=2.0)
        if self._transport is not None:
            self._transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_pending(SmppConnectionLost("client stopped"))

    @property
    def bound(self) -> bool:
        return self._bound.is_set() and self._conn is not None and self._conn.bound

    @property
    def can_submit(self) -> bool:
        return self.bound and not self._stopping and self.mode != "receiver"

    @property
    def window_in_use(self) -> int:
        return len(self._pending)

    def state(self) -> dict[str, Any]:
        return {
            "bound": self.bound,
            "mode": self.mode,
            "window": self.window,
            "window_in_use": self.window_in_use,
            "last_error": self._last_error,
            **self.counters,
        }

    # -- requests ----------------------------------------------------------------------------

    async def submit(self, pdu: p.Pdu, timeout: float | None = None) -> p.Pdu:
        """Send one request (submit_sm, data_sm, query_sm, ...) and return its response."""
        if not self.can_submit:
            raise SmppNotBound(f"{self.name}: not bound")
        async with self._slots:
            if not self.can_submit:
                raise SmppNotBound(f"{self.name}: not bound")
            self.counters["submitted"] += 1
            response = await self._request(pdu, timeout)
            if response.command_status in (S.ESME_RTHROTTLED, S.ESME_RMSGQFUL):
                self.counters["throttled"] += 1
            return response

    async def _request(self, pdu: p.Pdu, timeout: float | None = None) -> p.Pdu:
        conn = self._conn
        if conn is None or self._transport is None:
            raise SmppNotBound(f"{self.name}: not connected")
        pdu.sequence_number = 0
        data = conn.send(pdu)
        seq = pdu.sequence_number
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[p.Pdu] = loop.create_future()
        timer = loop.call_later(timeout or self.request_timeout, self._expire, conn, seq)
        self._pending[seq] = (future, timer)
        self._write(data)
        return await future

    def _expire(self, conn: Connection, seq: int) -> None:
        entry = self._pending.pop(seq, None)
        conn.forget(seq)
        if entry is not None and not entry[0].done():
            self.counters["timeouts"] += 1
            entry[0].set_exception(SmppTimeout(f"{self.name}: no response in time"))

    def _write(self, data: bytes) -> None:
        # Written at once, not gathered for a flush at the next turn of the loop: a window
        # slot freed by a response is refilled one turn sooner, and a turn under load lasts
        # milliseconds (bench/window.py, carrier 50 ms late: 1,152-1,186 -> 1,201-1,220
        # submit_sm/s). The transport sends at once when the socket takes it and buffers the
        # rest, so bursts cost no more (bench/smpp_loopback.py: 30.7k -> 31.7k submit_sm/s).
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _answer(self, data: bytes) -> None:
        """Write a response to the SMSC's request at the next turn of the loop, with the others
        made in this one: a commit settles a batch of receipts at once, and a write of its own
        for each answer was 4% of the delivery process's time (py-spy, bench/vs_kannel.py)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not self._answers:
            self._answers_to = transport
            (self._loop or asyncio.get_running_loop()).call_soon(self._flush_answers)
        elif self._answers_to is not transport:  # the link was rebuilt within the turn
            self._answers.clear()
            self._answers_to = transport
        self._answers.append(data)

    def _flush_answers(self) -> None:
        answers, self._answers = self._answers, []
        transport, self._answers_to = self._answers_to, None
        if not answers or transport is None or transport is not self._transport:
            return
        if not transport.is_closing():
            transport.write(b"".join(answers))

    # -- the connection loop -----------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.reconnect_min
        first = True
        while self._running:
            if not first:
                self.counters["reconnects"] += 1
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(self.reconnect_max, delay * 2)
            first = False
            try:
                await self._connect_and_bind()
            except (OSError, SmppError, ProtocolViolation, TimeoutError) as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.warning("smpp bind failed", connector=self.name, error=self._last_error)
                self._drop()
                continue
            except Exception as exc:
                # Anything else (a PDU our codec refuses to encode, a bug) must not end the task
                # silently: that left a connector that never binds, logs nothing and never
                # retries. Log it with its traceback and retry with the usual backoff.
                self._last_error = f"{type(exc).__name__}: {exc}"
                _log_unexpected("smpp bind failed unexpectedly", self.name, exc)
                self._drop()
                continue
            delay = self.reconnect_min
            try:
                await self._serve_bound()
            except Exception as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                _log_unexpected("smpp connection failed unexpectedly", self.name, exc)
            self._drop()
            if self._running:
                log.warning("smpp connection lost", connector=self.name, error=self._last_error)

    async def _serve_bound(self) -> None:
        """Keep the link probed until it is lost."""
        keepalive = asyncio.create_task(self._keepalive())
        try:
            await self._lost.wait()
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def _connect_and_bind(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        self._conn = Connection(Role.ESME)
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Protocol(self),
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl is not None else None,
            ),
            self.bind_timeout,
        )
        self._transport = transport
        self._protocol = protocol
        bind = BIND_MODES[self.mode](
            system_id=self.system_id, password=self.password, system_type=self.system_type
        )
        response = await self._request(bind, self.bind_timeout)
        if response.command_status != 0:
            raise SmppError(f"bind refused: {_status_name(response.command_status)}")
        if not self._conn.bound:
            # A generic_nack (or another PDU) with status 0 answers the sequence number without
            # binding the session; treating it as a bind left us idle on an unbound link.
            raise SmppError(f"bind answered with {type(response).__name__}, not a bind response")
        self.counters["binds"] += 1
        self._last_error = None
        self._bound.set()
        log.info("smpp bound", connector=self.name, mode=self.mode, host=self.host, port=self.port)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.enquire_link_interval)
            try:
                await self._request(p.EnquireLink(), timeout=min(10.0, self.request_timeout))
            except SmppTimeout:
                self._last_error = "enquire_link unanswered"
                if self._transport is not None:
                    self._transport.abort()
                return
            except (SmppError, ProtocolViolation):
                return
            except Exception as exc:
                # An unprobed link could stay up dead forever: drop it and let _run rebuild it.
                self._last_error = f"{type(exc).__name__}: {exc}"
                _log_unexpected("smpp keepalive failed unexpectedly", self.name, exc)
                if self._transport is not None:
                    self._transport.abort()
                return

    def _drop(self) -> None:
        self._bound.clear()
        if self._conn is not None:
            self._conn.close()
        if self._transport is not None:
            self._transport.abort()
        self._transport = None
        self._fail_pending(SmppConnectionLost(f"{self.name}: connection lost"))

    def _fail_pending(self, exc: SmppError) -> None:
        pending, self._pending = self._pending, {}
        for future, timer in pending.values():
            timer.cancel()
            if not future.done():
                future.set_exception(exc)

    # -- inbound -----------------------------------------------------------------------------

    def _on_lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        if exc is not None:
            self._last_error = str(exc)
        self._bound.clear()
        self._lost.set()

    def _on_data(self, protocol: _Protocol, data: bytes) -> None:
        conn = self._conn
        if protocol is not self._protocol or conn is None:
            return
        try:
            self._on_events(conn, data)
        except Exception as exc:
            # Without this asyncio would close the transport and log a bare "Fatal error"
            # without our connector's name; drop the link ourselves and let _run reconnect.
            self._last_error = f"{type(exc).__name__}: {exc}"
            _log_unexpected("smpp inbound data failed unexpectedly", self.name, exc)
            if self._transport is not None:
                self._transport.abort()

    def _on_events(self, conn: Connection, data: bytes) -> None:
        for event in conn.receive_data(data):
            if isinstance(event, PduReceived):
                self._on_pdu(conn, event.pdu)
            elif isinstance(event, InvalidPdu):
                if event.response is not None:
                    self._write(conn.send(event.response))
                if event.request is not None:
                    self._resolve(event.request.sequence_number, None, event.error)
            elif isinstance(event, FatalError):
                self._last_error = f"fatal: {event.reason}"
                if self._transport is not None:
                    self._transport.abort()

    def _on_pdu(self, conn: Connection, pdu: p.Pdu) -> None:
        if pdu.is_response:
            self.counters["responses"] += 1
            self._resolve(pdu.sequence_number, pdu, None)
            return
        command_id = pdu.command_id
        if command_id == C.enquire_link:
            self._write(conn.send(pdu.response()))
        elif command_id == C.unbind:
            self._write(conn.send(pdu.response()))
            self._last_error = "unbound by the SMSC"
            if self._transport is not None:
                self._transport.close()
        elif isinstance(pdu, p.DeliverSm | p.DataSm):
            self.counters["delivered_in"] += 1
            task = (self._loop or asyncio.get_running_loop()).create_task(self._deliver(conn, pdu))
            self._inbound.add(task)
            task.add_done_callback(self._inbound.discard)
        else:  # alert_notification and the like: nothing to answer or do
            pass

    async def _deliver(self, conn: Connection, pdu: p.DeliverSm | p.DataSm) -> None:
        status = 0
        if self.on_deliver is not None:
            try:
                status = await self.on_deliver(pdu)
            except Exception as exc:
                # Not log.exception: the frames' locals would show the PDU, receipt text and all.
                _log_unexpected("inbound handler failed", self.name, exc)
                status = S.ESME_RX_T_APPN
        if conn is self._conn and self._transport is not None:
            with contextlib.suppress(ProtocolViolation):
                self._answer(conn.send(pdu.response(status)))

    def _resolve(self, seq: int, pdu: p.Pdu | None, error: Exception | None) -> None:
        entry = self._pending.pop(seq, None)
        if entry is None:
            return
        future, timer = entry
        timer.cancel()
        if future.done():
            return
        if pdu is not None:
            future.set_result(pdu)
        else:
            future.set_exception(SmppError(f"{self.name}: malformed response: {error}"))


def _log_unexpected(event: str, connector: str, exc: BaseException) -> None:
    """Log an unexpected error with its traceback, but not the frames' local variables.

    ``log.exception`` hands the exception to the renderer, and the console renderer prints each
    frame's locals, which include the bind's password or an inbound PDU's text; a plain
    traceback names the code path and the error without any values.
    """
    log.error(
        event,
        connector=connector,
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)).rstrip(),
    )


def _status_name(status: int) -> str:
    try:
        return f"{S(status).name} (0x{status:02X})"
    except ValueError:
        return f"0x{status:08X}"
