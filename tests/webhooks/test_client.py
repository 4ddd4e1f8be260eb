"""The webhook client against real receivers: aiohttp's server, and raw sockets that misbehave."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme
from aiohttp import web

from dakghar.webhooks.client import WebhookClient
from dakghar.webhooks.resolver import GuardedResolver, RefusedAddress

HEADERS = {"Content-Type": "application/json", "Dakghar-Event-Id": "evt_1"}


def client(**options: object) -> WebhookClient:
    opts: dict[str, object] = {"timeout": 2.0, "limit": 4, "user_agent": "Dakghar-Webhooks/1"}
    opts.update(options)
    return WebhookClient(GuardedResolver(allow_private=True), **opts)  # type: ignore[arg-type]


class App:
    """An aiohttp receiver that records each request and the connection it came on."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str], object]] = []
        self.port = 0

    async def hook(self, req: web.Request) -> web.StreamResponse:
        assert req.transport is not None
        peer = req.transport.get_extra_info("peername")
        self.requests.append((req.path_qs, await req.read(), dict(req.headers), peer))
        return web.Response(status=int(req.query.get("status", "204")))


@pytest.fixture
async def app() -> AsyncIterator[App]:
    rec = App()
    web_app = web.Application()
    web_app.router.add_route("POST", "/{tail:.*}", rec.hook)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


async def test_posts_reuse_one_connection_and_carry_body_headers_and_path(app: App) -> None:
    c = client()
    try:
        statuses = [
            await c.post(
                f"http://127.0.0.1:{app.port}/hook/é x?status={s}&a=1", b'{"n":1}', HEADERS
            )
            for s in (200, 204, 500)
        ]
    finally:
        await c.close()
    assert statuses == [200, 204, 500]
    paths = {r[0] for r in app.requests}
    assert paths == {f"/hook/%C3%A9%20x?status={s}&a=1" for s in (200, 204, 500)}
    assert all(r[1] == b'{"n":1}' for r in app.requests)
    h = app.requests[0][2]
    assert h["Host"] == f"127.0.0.1:{app.port}" and h["User-Agent"] == "Dakghar-Webhooks/1"
    assert h["Dakghar-Event-Id"] == "evt_1" and h["Content-Length"] == "7"
    assert len({r[3] for r in app.requests}) == 1  # one client port: one kept-alive connection


async def test_concurrent_posts_stay_within_the_limit(app: App) -> None:
    c = client(limit=3)
    try:
        url = f"http://127.0.0.1:{app.port}/hook"
        assert set(await asyncio.gather(*(c.post(url, b"{}", HEADERS) for _ in range(30)))) == {204}
    finally:
        await c.close()
    assert len(app.requests) == 30
    assert len({r[3] for r in app.requests}) <= 3


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def test_an_endless_body_is_cut_off_and_the_status_kept() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
        try:
            while True:
                writer.write(b"x" * 65536)
                await writer.drain()
        except ConnectionError:
            pass

    server, port = await raw_server(endless)
    c = client(max_response=100_000)
    try:
        started = time.monotonic()
        assert await c.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS) == 200
        assert time.monotonic() - started < 1.0
    finally:
        await c.close()
        server.close()


async def test_a_receiver_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server, port = await raw_server(silent)
    c = client(timeout=0.3)
    try:
        with pytest.raises(TimeoutError):
            await c.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS)
    finally:
        await c.close()
        server.close()


async def test_a_kept_connection_that_stops_answering_times_out_and_is_not_kept() -> None:
    connections = 0

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        if connections == 1:
            await read_request(reader)  # the second request on this connection: no answer
            await asyncio.sleep(10)

    server, port = await raw_server(once)
    c = client(timeout=0.3)
    url = f"http://127.0.0.1:{port}/"
    try:
        assert await c.post(url, b"{}", HEADERS) == 204
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await c.post(url, b"{}", HEADERS)
        assert 0.25 < time.monotonic() - started < 1.0
        assert await c.post(url, b"{}", HEADERS) == 204  # on a new connection
        assert connections == 2
    finally:
        await c.close()
        server.close()


async def test_garbage_is_a_value_error_and_a_body_to_the_close_is_read() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if b"garbage" in request:
            writer.write(b"SMTP ready\r\n\r\n")
        elif b"interim" in request:
            writer.write(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
            )
        else:  # HTTP/1.0 style: no length, the body ends with the connection
            writer.write(b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server, port = await raw_server(answer)
    c = client()
    try:
        with pytest.raises(ValueError, match="unreadable response"):
            await c.post(f"http://127.0.0.1:{port}/garbage", b"{}", HEADERS)
        assert await c.post(f"http://127.0.0.1:{port}/interim", b"{}", HEADERS) == 202
        assert await c.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS) == 201
    finally:
        await c.close()
        server.close()


async def test_a_kept_connection_the_receiver_closed_is_replaced_without_a_failure() -> None:
    connections = 0

    async def one_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        # Keep-alive promised, then the receiver closes as soon as the answer is out.
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    server, port = await raw_server(one_each)
    c = client()
    try:
        assert await c.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS) == 204
        await asyncio.sleep(0.2)  # closed while idle in the pool
        assert await c.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS) == 204
    finally:
        await c.close()
        server.close()
    assert connections == 2


async def test_a_refused_connection_is_an_os_error() -> None:
    server, port = await raw_server(lambda r, w: asyncio.sleep(0))
    server.close()
    await server.wait_closed()
    c = client()
    try:
        with pytest.raises(ConnectionRefusedError):
            await c.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS)
    finally:
        await c.close()


async def test_the_guarded_resolver_refuses_loopback_before_any_connection(app: App) -> None:
    c = WebhookClient(GuardedResolver(allow_private=False), timeout=2, limit=2, user_agent="t")
    try:
        with pytest.raises(RefusedAddress, match="loopback"):
            await c.post(f"http://127.0.0.1:{app.port}/hook", b"{}", HEADERS)
    finally:
        await c.close()
    assert app.requests == []


async def test_https_checks_the_certificate_and_its_host_name() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    hits: list[str] = []

    async def hook(req: web.Request) -> web.Response:
        hits.append(req.path)
        return web.Response(status=200)

    web_app = web.Application()
    web_app.router.add_post("/hook", hook)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    try:
        good = client(ssl_context=trusting)
        try:
            assert await good.post(f"https://localhost:{port}/hook", b"{}", HEADERS) == 200
        finally:
            await good.close()
        untrusted = client()  # the system's CAs: trustme's is not among them
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await untrusted.post(f"https://localhost:{port}/hook", b"{}", HEADERS)
        finally:
            await untrusted.close()
        wrong_name = client(ssl_context=trusting)  # the certificate is for localhost only
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await wrong_name.post(f"https://127.0.0.1:{port}/hook", b"{}", HEADERS)
        finally:
            await wrong_name.close()
    finally:
        await runner.cleanup()
    assert hits == ["/hook"]


async def test_idle_connections_to_many_receivers_stay_within_the_limit() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await read_request(reader)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    servers = [await raw_server(answer) for _ in range(10)]
    c = client(limit=2)
    try:
        for _, port in servers:
            assert await c.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS) == 204
        assert len(c._open) <= 4  # 2 in use at most, and 2 idle
        # the most recent receivers kept theirs: the next POST to the last one reuses it
        kept = c._idle[("http", "127.0.0.1", servers[-1][1])][0]
        assert await c.post(f"http://127.0.0.1:{servers[-1][1]}/", b"{}", HEADERS) == 204
        assert c._idle[("http", "127.0.0.1", servers[-1][1])][0] is kept
    finally:
        await c.close()
        for server, _ in servers:
            server.close()
