"""The webhook sender's HTTP/1.1 client: one POST, its status, pooled keep-alive connections.

Why not aiohttp's ``ClientSession``, which sent webhooks until now: it costs 76-84 µs of CPU per
POST on this project's 2-core benchmark box, against 24-30 µs for this client on the same
loopback receiver (``bench/webhooks.py``). A webhook is the one request per message that
Dakghar makes itself, so on the delivery side that difference is a share of every message. What
the outbox needs is narrow: POST a small signed body, read the status, never follow a redirect,
never use a proxy, and keep the connection for the next event. The parts that must be right are
not ours: responses are parsed by httptools (llhttp, the parser uvicorn uses for our API), URLs
by yarl (as ``check_callback_url`` parses them), TLS by the standard ``ssl`` module with
certificate and host name checks, and addresses come from :class:`GuardedResolver`, so the
address checked is the address connected to.

Limits, because a receiver is chosen by API clients and may be hostile:
- ``timeout``: the whole attempt (resolve, connect, TLS, send, response) or ``TimeoutError``;
- ``max_response``: a response's head and body; the status is kept and the connection closed
  after that much, so an endless body costs nothing more;
- at most ``limit`` requests at once, and at most ``limit`` idle connections beside them (the
  oldest closed first), each kept for ``idle_seconds`` at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import httptools
from yarl import URL

from dakghar.webhooks.resolver import GuardedResolver

MAX_RESPONSE = 64 * 1024
IDLE_SECONDS = 30.0


class ResponseError(ValueError):
    """The receiver's answer is not HTTP/1.x the parser can read."""


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host (IDNA, lower case), port
    head: bytes  # "POST <path?query> HTTP/1.1" and the Host header


@functools.lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    parsed = URL(url)
    scheme, host = parsed.scheme, parsed.raw_host
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    port = parsed.port or (443 if scheme == "https" else 80)
    # raw_path_qs is percent-encoded ASCII: no space, CR or LF reaches the request line.
    target = parsed.raw_path_qs or "/"
    name = f"[{host}]" if ":" in host else host
    authority = name if parsed.is_default_port() else f"{name}:{port}"
    head = f"POST {target} HTTP/1.1\r\nHost: {authority}\r\n".encode("ascii")
    return _Target((scheme, host, port), head)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, max_response: int) -> None:
        self.max_response = max_response
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[int] | None = None
        self._received = 0
        self._status = 0
        self._reusable = False
        self._timer: asyncio.TimerHandle | None = None  # the request's deadline
        self._loop = asyncio.get_running_loop()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is no longer in step
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(exc=ResponseError(f"unreadable response: {exc}"))
            return
        if (
            self._waiter is not None
            and not self._waiter.done()
            and self._received > (self.max_response)
        ):
            if self._status:  # the status is in: the rest is not worth reading
                self._finish(self._status)
            else:
                self._finish(exc=ResponseError(f"response head over {self.max_response} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_timer()
        if self._waiter is not None and not self._waiter.done():
            if self._status:
                # The status is in (a body delimited by the end of the connection, or cut
                # short): the status is the answer.
                self._finish(self._status)
            else:
                self._waiter.set_exception(
                    ConnectionResetError("connection closed by the receiver")
                )

    # -- httptools callbacks

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:
            self._status = 0  # an interim answer (100 Continue): the final one follows
            return
        self._reusable = self._parser.should_keep_alive()
        self._finish(self._status)

    # --

    def _finish(self, status: int = 0, exc: Exception | None = None) -> None:
        waiter, self._waiter = self._waiter, None
        self._stop_timer()
        if exc is not None or status == 0 or not self._reusable:
            self.close()
        if waiter is not None and not waiter.done():
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(status)

    def request(self, data: bytes, deadline: float) -> asyncio.Future[int]:
        """Send one request; the future gets its status, or ``TimeoutError`` at ``deadline``
        (the loop's clock) and the connection is closed. A timer, not ``asyncio.timeout``:
        that was a tenth of a webhook's CPU (py-spy, bench/vs_kannel.py)."""
        assert self.transport is not None
        waiter = self._loop.create_future()
        self._waiter = waiter
        self._timer = self._loop.call_at(deadline, self._expire)
        self._received = self._status = 0
        self._reusable = False
        self._parser = httptools.HttpResponseParser(self)
        self.transport.write(data)
        return waiter

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self._finish(exc=TimeoutError("no response in time"))

    @property
    def answered_nothing(self) -> bool:
        """No byte of the last request's response arrived."""
        return self._received == 0

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class WebhookClient:
    """POSTs to callback URLs over pooled connections (see the module's notes)."""

    def __init__(
        self,
        resolver: GuardedResolver,
        *,
        timeout: float,
        limit: int,
        user_agent: str,
        max_response: int = MAX_RESPONSE,
        idle_seconds: float = IDLE_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.limit = limit
        self.max_response = max_response
        self.idle_seconds = idle_seconds
        self._ssl = ssl_context
        self._agent = f"User-Agent: {user_agent}\r\n".encode("ascii")
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._slots = asyncio.Semaphore(limit)
        self._open: set[_Connection] = set()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to ``url``; the response's status. Raises ``OSError`` (resolving,
        connecting, TLS, a dropped connection), ``TimeoutError`` or ``ValueError``."""
        target = _target(url)
        lines = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items())
        data = b"".join((target.head, self._agent, lines,
                         b"Content-Length: %d\r\n\r\n" % len(body), body))  # fmt: skip
        async with self._slots:
            deadline = asyncio.get_running_loop().time() + self.timeout
            conn = self._take(target.origin)
            if conn is not None:
                try:
                    return await self._exchange(target.origin, conn, data, deadline)
                except ConnectionError:
                    if not conn.answered_nothing:
                        raise
                    # The receiver had closed the idle connection as we wrote: nothing of this
                    # request was answered, so it goes once more on a new connection.
            async with asyncio.timeout_at(deadline):
                conn = await self._connect(target.origin)
            return await self._exchange(target.origin, conn, data, deadline)

    async def _exchange(
        self, origin: tuple[str, str, int], conn: _Connection, data: bytes, deadline: float
    ) -> int:
        try:
            status = await conn.request(data, deadline)
        except BaseException:
            conn.close()
            self._open.discard(conn)
            raise
        if conn.closed:
            self._open.discard(conn)
        else:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(origin, deque()).append(conn)
            while len(self._open) > 2 * self.limit and self._idle:
                self._evict_oldest()
        return status

    def _evict_oldest(self) -> None:
        """Close the connection idle the longest, whatever its origin: with many receivers,
        at most ``limit`` connections stay open beside the ``limit`` in use."""
        origin = min(self._idle, key=lambda o: self._idle[o][0].idle_since)
        idle = self._idle[origin]
        conn = idle.popleft()
        conn.close()
        self._open.discard(conn)
        if not idle:
            del self._idle[origin]

    def _take(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have timed out
            if not conn.closed and now - conn.idle_since < self.idle_seconds:
                return conn
            conn.close()
            self._open.discard(conn)
        self._trim(now)
        return None

    def _trim(self, now: float) -> None:
        """Close connections idle too long, and keep at most ``limit`` idle per origin."""
        for origin, idle in list(self._idle.items()):
            while idle and (
                len(idle) > self.limit
                or idle[0].closed
                or now - idle[0].idle_since >= self.idle_seconds
            ):
                conn = idle.popleft()
                conn.close()
                self._open.discard(conn)
            if not idle:
                del self._idle[origin]

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        addresses = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        loop = asyncio.get_running_loop()
        error: OSError | None = None
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(self.max_response),
                    address["host"],
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
            except OSError as exc:  # the next address, as a browser would
                error = exc
                continue
            self._open.add(conn)
            return conn
        raise error or OSError(f"{host} has no address to connect to")

    async def close(self) -> None:
        """Close every connection."""
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        with contextlib.suppress(Exception):
            await self.resolver.close()
