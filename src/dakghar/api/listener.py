"""The HTTP listener of ``dakghar serve``: sockets bound up front, and limits on slow clients.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) and, with
``limit_concurrency``, answers 503 beyond a number of connections, but it waits forever for a
request's headers and body: a client that opens a connection and sends nothing, or sends its
headers a byte at a time (slowloris), holds a socket and a file descriptor indefinitely. So:

- :class:`LimitedHttpToolsProtocol` is uvicorn's httptools protocol with one deadline per
  connection: the request headers must be complete within ``[server] header_timeout_seconds`` of the
  connection opening (or of the first byte of a later request on a kept-alive connection), and the
  body within ``body_timeout_seconds`` of the headers; otherwise the connection is closed. A
  connection beyond ``max_connections`` is answered 503 and closed as soon as it is accepted.
  Only the protocol's interface (``connection_made``, ``data_received``, ``connection_lost``) and
  httptools' parser callbacks (``on_message_begin``, ``on_headers_complete``,
  ``on_message_complete``) are overridden, names that httptools itself fixes. It also hands each
  request's cycle a :class:`_JoinedWrites` in place of the transport, so that a response's
  head and body go out in one write.
- :func:`bind` creates the listening sockets before anything else starts, so that a port in use
  is reported as one line before a demo key is made or a banner printed.
- :class:`GatewayServer` runs uvicorn on those sockets, calls back once it is serving (the demo
  banner), and turns a failed application start-up into :class:`StartupFailed` carrying the
  original exception, in place of uvicorn's logged traceback.
- :func:`tls_context` turns ``[server] tls_cert``/``tls_key`` into a server-side
  :class:`ssl.SSLContext` (TLS 1.2 or newer), refusing an unreadable or mismatched pair as one
  line naming the setting. Only the API's listener (the first socket) is wrapped in it: the
  dedicated ``[metrics]`` listener stays plain HTTP, as Prometheus scrapes it on an internal
  address. uvicorn's own ``ssl_*`` options would wrap every socket alike, so the TLS listener is
  created here, the way uvicorn creates its own (``loop.create_server(sock=..., ssl=...)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import re
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dakghar.settings import ServerSettings, SettingsError

_UVICORN_LOG = "uvicorn.error"
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 19\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Service Unavailable"
)


class ListenError(Exception):
    """A listening socket could not be created; the message is one line for the operator."""


class StartupFailed(Exception):
    """The application's start-up (its lifespan) raised; ``error`` is what it raised."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A socket bound to ``host:port`` and listening; ``port`` 0 picks a free one.

    Listening at once (not only binding) makes the port ours before the application starts:
    connections that arrive meanwhile wait in the backlog and are served once it has.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # A restarted gateway must not wait for its predecessor's TIME_WAIT connections; on
        # Linux this still refuses a port another socket is listening on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {hostport(host, port)}: {_reason(exc)}") from exc
    sock.setblocking(False)
    return sock


def hostport(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


class _EncryptedKey(Exception):
    """Raised by the password callback: without it OpenSSL would prompt on the terminal."""


def tls_context(server: ServerSettings) -> ssl.SSLContext | None:
    """The API listener's TLS context from ``[server] tls_cert``/``tls_key``; None for HTTP.

    Raises :class:`SettingsError` with one line naming the setting at fault. Each file is read
    first, so that "no such file" names the right one, and the chain is parsed on its own, since
    OpenSSL's error for a bad chain and for a bad key is the same "PEM lib".
    """
    cert, key = server.tls_cert, server.tls_key
    if not cert and not key:
        return None
    if not cert or not key:
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise SettingsError(f"server: {given} is set but {missing} is not; HTTPS needs both")
    chain = _read_pem("tls_cert", cert)
    _read_pem("tls_key", key)
    try:
        ssl.create_default_context(cadata=chain)
    except (ssl.SSLError, ValueError):
        raise SettingsError(f"server: tls_cert {cert}: no PEM certificate in it") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    def no_password() -> str:
        raise _EncryptedKey

    try:
        context.load_cert_chain(cert, key, password=no_password)
    except _EncryptedKey:
        raise SettingsError(
            f"server: tls_key {key} is encrypted; give the key without a passphrase"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise SettingsError(
                f"server: tls_key {key} is not the private key of tls_cert {cert}"
            ) from None
        raise SettingsError(f"server: tls_key {key}: no PEM private key in it") from None
    return context


def _read_pem(setting: str, path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        raise SettingsError(f"server: {setting} {path}: {_reason(exc)}") from None


def limited_protocol(limits: ServerSettings) -> type[LimitedHttpToolsProtocol]:
    """The protocol class with ``limits`` applied (uvicorn takes a class, not an instance)."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {
            "header_timeout": limits.header_timeout_seconds,
            "body_timeout": limits.body_timeout_seconds,
            "max_connections": limits.max_connections,
        },
    )


_UPGRADE_HEADER = re.compile(rb"\nupgrade[ \t]*:", re.IGNORECASE)


def _ignore_upgrade(data: bytes) -> bytes:
    """The bytes with an ``Upgrade`` header in the header block renamed out of the way.

    The gateway speaks HTTP/1.1 only and offers no upgrade (RFC 9110 section 7.8 lets a server
    ignore the header). But llhttp treats a request carrying ``Upgrade`` and ``Connection:
    upgrade`` as switching protocols once its headers end: the body that follows was handed
    over as the new protocol's bytes, and the API saw an empty body. ``curl --http2`` on an
    ``http://`` address sends ``Upgrade: h2c`` with every first request, POSTs included.
    Renamed, the header is an ordinary one the application ignores; a header block split
    across reads at that very header is left as it is.
    """
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    renamed, found = _UPGRADE_HEADER.subn(b"\nignored:", head)
    if not found:
        return data
    return renamed if end < 0 else renamed + data[end:]


# Responses up to this size are joined into one write; a larger body costs more to copy than
# its second system call.
_JOIN_LIMIT = 64 * 1024


class _JoinedWrites:
    """The transport as one request's response cycle sees it.

    uvicorn writes a response's status line and headers, then its body, as two writes: two
    system calls and two TCP segments for every ``202``, each waking the client once. The first
    write of a cycle is held here until the second (Starlette sends the body in the same turn of
    the loop), and the two go out as one. A write held at the end of the turn (a ``100
    Continue``, or a streamed response whose body is not ready) goes out at the next turn.
    """

    __slots__ = ("_held", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None
        self._started = False  # the first write has been made (and held)

    def write(self, data: bytes) -> None:
        if not self._started:
            self._started = True
            self._held = data
            self._loop.call_soon(self.flush)
            return
        held, self._held = self._held, None
        if held is None:
            self._transport.write(data)
        elif len(data) <= _JOIN_LIMIT:
            self._transport.write(held + data)
        else:
            self._transport.write(held)
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a connection cap."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int | None = None
    # When the one pending deadline of this connection (headers or body) falls, on the loop's
    # clock, or None between requests, when uvicorn's keep-alive timer (or the application,
    # while it answers) is in charge.
    _due: float | None = None
    # The timer that looks at ``_due``: set for the earliest deadline and left running when a
    # deadline is met or pushed back, so a request moves a float instead of cancelling and
    # scheduling timers (four per request before); when it fires early it waits again.
    _timer: asyncio.TimerHandle | None = None
    _timer_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            # Refused at accept rather than when its headers arrive (uvicorn's own check), so
            # that connections beyond the cap never hold a descriptor for a header timeout.
            transport.write(_REFUSED)
            transport.close()
            return
        # A connection that never sends a byte gets no keep-alive timer from uvicorn (that is
        # armed after a response), so the header clock starts at accept.
        self._arm(self.header_timeout)

    # Between requests: the next bytes begin a request's headers (see data_received).
    _in_headers = True

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            data = _ignore_upgrade(data)
        super().data_received(data)
        # uvicorn cancels its keep-alive timer on any data. Bytes that start no request (stray
        # CRLFs between requests) would then leave an idle connection with no timer at all.
        cycle = self.cycle
        if self._due is None and (cycle is None or cycle.response_complete):
            self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._due = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The first request keeps the clock started at accept; later ones start it here.
        if self._due is None:
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None:  # its task has not run yet: nothing was written through it
            self.cycle.transport = _JoinedWrites(self.transport, self.loop)  # type: ignore[assignment]
        # Cancelled at once by on_message_complete when there is no body.
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._in_headers = True
        # Before uvicorn's own handler, which returns early when the response is already sent.
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        if self.transport.is_closing():
            self._due = None
            return
        due = self._due = self.loop.time() + seconds
        if self._timer is None or self._timer_at > due:
            self._wait_until(due)

    def _disarm(self) -> None:
        self._due = None

    def _wait_until(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self.loop.call_at(when, self._expire), when

    def _expire(self) -> None:
        self._timer = None
        due = self._due
        if due is None:
            return  # met: the next deadline starts a timer of its own
        if self.loop.time() < due:
            self._wait_until(due)  # pushed back since this timer was set
            return
        self._due = None
        if not self.transport.is_closing():
            self.transport.close()


class LifespanGuard:
    """Wraps the app to keep a failed start-up's exception instead of a logged traceback.

    Starlette answers ``lifespan.startup.failed`` with the formatted traceback, which uvicorn
    logs, and re-raises. Here the message is dropped and the exception kept in ``error`` for
    :class:`GatewayServer`, which reports it as one line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: Exception | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        started = answered = False

        async def send_quietly(message: Message) -> None:
            nonlocal started, answered
            if message["type"] == "lifespan.startup.failed":
                message = {"type": "lifespan.startup.failed", "message": ""}
            if message["type"].startswith("lifespan.startup."):
                answered = True
                started = message["type"] == "lifespan.startup.complete"
            await send(message)

        try:
            await self.app(scope, receive, send_quietly)
        except Exception as exc:
            if started:  # a failure at shutdown: uvicorn reports it as usual
                raise
            self.error = exc
            if not answered:
                await send({"type": "lifespan.startup.failed", "message": ""})


class _Silence(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def _silenced(name: str) -> Iterator[None]:
    logger, silence = logging.getLogger(name), _Silence()
    logger.addFilter(silence)
    try:
        yield
    finally:
        logger.removeFilter(silence)


class GatewayServer(uvicorn.Server):
    """uvicorn's server on pre-bound sockets, with a hook for when it is serving."""

    def __init__(
        self,
        config: uvicorn.Config,
        guard: LifespanGuard,
        on_started: Sequence[Callable[[], None]] = (),
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(config)
        self.guard = guard
        self.on_started = list(on_started)
        self.tls = tls

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # With TLS, uvicorn serves the plain sockets and the first (the API's) is added below.
        secured = list(sockets or [])[:1] if self.tls is not None else []
        plain = None if sockets is None else sockets[len(secured) :]
        # uvicorn logs "Application startup failed. Exiting." and exits the process when the
        # lifespan fails; the gateway says what failed instead, in one line.
        try:
            with _silenced(_UVICORN_LOG):
                await super().startup(sockets=plain)
        except SystemExit:
            if self.guard.error is not None:
                raise StartupFailed(self.guard.error) from None
            raise
        if self.started:
            for sock in secured:
                await self._serve_tls(sock)
            for callback in self.on_started:
                callback()

    async def _serve_tls(self, sock: socket.socket) -> None:
        """Serve ``sock`` over TLS with uvicorn's protocol, as ``Server.startup`` does."""
        config, loop = self.config, asyncio.get_running_loop()

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        header_timeout = getattr(config.http_protocol_class, "header_timeout", 10.0)
        server = await loop.create_server(
            protocol,
            sock=sock,
            ssl=self.tls,
            backlog=config.backlog,
            # A client that stalls the handshake is held no longer than one stalling its headers.
            ssl_handshake_timeout=header_timeout,
        )
        self.servers.insert(0, server)  # closed with the others at shutdown


def serve(
    app: ASGIApp,
    sockets: list[socket.socket],
    limits: ServerSettings,
    on_started: Sequence[Callable[[], None]] = (),
    tls: ssl.SSLContext | None = None,
) -> None:
    """Run ``app`` on ``sockets`` with ``limits`` until SIGINT or SIGTERM.

    With ``tls``, the first socket (the API's) speaks HTTPS. Raises :class:`StartupFailed`
    when the application's start-up raised.
    """
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - Windows
        loop = "asyncio"
    guard = LifespanGuard(app)
    config = uvicorn.Config(
        guard,
        loop=loop,
        http=limited_protocol(limits),
        ws="none",  # no WebSocket routes: an Upgrade request is answered as plain HTTP
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Our protocol refuses connections beyond max_connections at accept; uvicorn's own
        # check (at headers, counting the connection itself) must not refuse the last one.
        limit_concurrency=limits.max_connections + 1,
        # uvicorn takes whole seconds here.
        timeout_keep_alive=max(1, math.ceil(limits.keep_alive_seconds)),
        timeout_graceful_shutdown=10,
    )
    GatewayServer(config, guard, on_started, tls).run(sockets=sockets)
