"""The listener's limits against a real ``dakghar serve``: slow, idle and surplus connections.

Before the limits, 500 slowloris connections (headers a byte at a time, never finished) and
thousands of idle ones stayed open for as long as their clients liked. Here a serve runs with
``[server]`` limits of about a second, and the tests check that such connections are closed in
time while ordinary requests keep getting answers. Loopback only; a few hundred sockets at most.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from tests.e2e.serve_process import Served, read_response, serving

pytestmark = pytest.mark.timeout(90)

LIMITS = """
[server]
header_timeout_seconds = 1.0
body_timeout_seconds = 1.0
keep_alive_seconds = 1.0
max_connections = {max_connections}
"""
SLOW = 300


async def _slowloris(port: int, request: bytes, give_up: float) -> float:
    """Send ``request`` a byte every 50 ms; seconds until the server closed (inf: it did not)."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for byte in request:
            if time.monotonic() - started > give_up:
                return float("inf")
            try:
                writer.write(bytes([byte]))
                data = await asyncio.wait_for(reader.read(1), 0.05)
            except TimeoutError:
                continue
            except ConnectionError:
                return time.monotonic() - started
            assert data == b"", f"a response to unfinished headers: {data!r}"
            return time.monotonic() - started
        return float("inf")
    finally:
        writer.close()


async def _request(port: int, path: str = "/healthz") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def _during(port: int, stop: asyncio.Event) -> list[bytes]:
    answers = []
    while not stop.is_set():
        answers.append(await _request(port))
        await asyncio.sleep(0.1)
    return answers


def test_slowloris_connections_are_closed_at_the_header_timeout(tmp_path: Path) -> None:
    async def go(served: Served) -> tuple[list[float], list[bytes], bytes]:
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        stop = asyncio.Event()
        normal = asyncio.create_task(_during(served.port, stop))
        slow = await asyncio.gather(
            *(_slowloris(served.port, request, give_up=4.0) for _ in range(SLOW))
        )
        stop.set()
        return slow, await normal, await _request(served.port)

    with serving(tmp_path, LIMITS.format(max_connections=2000), "--no-delivery") as served:
        closed_after, during, after = asyncio.run(go(served))
    late = [t for t in closed_after if t > 2.5]
    assert not late, f"{len(late)} of {SLOW} slowloris connections outlived 2.5 s"
    assert during and all(a.startswith(b"HTTP/1.1 200") for a in during), during[:3]
    assert after.startswith(b"HTTP/1.1 200"), after


def test_idle_and_kept_alive_connections_are_closed(tmp_path: Path) -> None:
    with serving(tmp_path, LIMITS.format(max_connections=2000), "--no-delivery") as served:
        silent = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(200)]
        kept = socket.create_connection(("127.0.0.1", served.port))
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        kept.settimeout(5)
        assert read_response(kept).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        for sock in [*silent, kept]:
            sock.settimeout(max(0.1, 3.0 - (time.monotonic() - started)))
            try:
                assert sock.recv(1) == b""  # closed by the server, nothing said
            except ConnectionResetError:
                pass
            except TimeoutError:
                pytest.fail("an idle connection was still open 3 s later")
            finally:
                sock.close()


def test_a_slow_body_is_cut_off_at_the_body_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, LIMITS.format(max_connections=2000), "--no-delivery") as served:
        sock = socket.create_connection(("127.0.0.1", served.port))
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        sock.settimeout(4)
        started = time.monotonic()
        try:
            while sock.recv(65536):  # whatever the app answers, the connection must close
                pass
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail("a request whose body never finished was still open 4 s later")
        finally:
            sock.close()
        assert time.monotonic() - started < 3


def test_headers_that_each_come_in_time_never_close_the_connection(tmp_path: Path) -> None:
    # One timer per connection stays set while deadlines are met and pushed back: when it fires
    # before the deadline now pending, it must wait again, not close the connection. Each
    # request's headers take half the timeout here, so the timer always fires mid-request.
    with serving(tmp_path, LIMITS.format(max_connections=2000), "--no-delivery") as served:
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        try:
            for _ in range(6):  # three header timeouts in all
                sock.sendall(b"GET /healthz HTTP/1.1\r\n")
                time.sleep(0.5)
                sock.sendall(b"Host: x\r\n\r\n")
                assert read_response(sock).startswith(b"HTTP/1.1 200")
        finally:
            sock.close()


def test_connections_beyond_max_connections_are_refused_with_503(tmp_path: Path) -> None:
    toml = LIMITS.format(max_connections=20).replace("header_timeout_seconds = 1.0", "") + (
        "header_timeout_seconds = 10.0\n"
    )
    with serving(tmp_path, toml, "--no-delivery") as served:
        held = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(20)]
        time.sleep(0.3)  # let the server accept all of them
        extra = socket.create_connection(("127.0.0.1", served.port))
        extra.settimeout(3)
        try:
            answer = extra.recv(65536)
        except TimeoutError:
            answer = b""
        finally:
            extra.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert asyncio.run(_request(served.port)).startswith(b"HTTP/1.1 200")


def test_a_post_asking_to_upgrade_to_h2c_keeps_its_body(tmp_path: Path) -> None:
    """``curl --http2 http://...`` sends ``Upgrade: h2c`` with its first request; the gateway
    offers no upgrade, and the request must be read as the HTTP/1.1 request it also is."""
    import subprocess
    import sys

    from tests.e2e.serve_process import serve_env

    env = serve_env(tmp_path)

    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "dakghar", "--config", str(tmp_path / "dakghar.toml")]
        return subprocess.check_output([*command, *args], env=env, text=True).strip()

    (tmp_path / "dakghar.toml").write_text("")
    account = cli("accounts", "create", "h2c", "--sender", "DKGHAR", "--balance", "10")
    key = cli("keys", "create", account, "--sandbox")
    body = b'{"to": "+919812345678", "body": "hello"}'
    with serving(tmp_path, "", "--no-delivery") as served:
        sock = socket.create_connection(("127.0.0.1", served.port))
        sock.settimeout(5)
        for _ in range(2):  # the upgrade asked for on the first request, then a plain one
            sock.sendall(
                b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + key.encode() + b"\r\n"
                b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            answer = read_response(sock)
            assert answer.startswith(b"HTTP/1.1 202"), answer[:300]
        sock.close()
