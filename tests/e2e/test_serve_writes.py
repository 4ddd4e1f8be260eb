"""A response leaves ``serve`` as one TCP segment, head and body together.

uvicorn writes the status line and headers, then the body: two segments for every ``202``, and
the client woke up twice. The listener joins them (``_JoinedWrites``). The client's kernel
counts the data segments it received (``TCP_INFO``'s ``tcpi_data_segs_in``), so the test reads
what arrived on the wire, on a kept-alive connection to a real ``serve``.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serve_process import read_response, serve_env, serving

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO's segment counts are Linux's"),
]
# Offset of tcpi_data_segs_in in struct tcp_info (linux/tcp.h, Linux 4.6 and later).
DATA_SEGS_IN = 152


def data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < DATA_SEGS_IN + 4:
        pytest.skip("this kernel's tcp_info has no data segment counts")
    return int(struct.unpack_from("I", info, DATA_SEGS_IN)[0])


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send ``request`` and read one whole response."""
    sock.sendall(request)
    return read_response(sock)


def sandbox_key(tmp: Path) -> str:
    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "dakghar.cli.main", *args]
        return subprocess.check_output(command, env=serve_env(tmp), text=True).strip()

    return cli("keys", "create", cli("accounts", "create", "w", "--sender", "DKGHAR"), "--sandbox")


def test_each_response_is_one_segment_and_100_continue_still_comes_first(tmp_path: Path) -> None:
    key = sandbox_key(tmp_path)
    with serving(tmp_path) as served:
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        try:
            counts = []
            for _ in range(3):
                head = exchange(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200")
                counts.append(data_segments_in(sock))
            body = b'{"to": "+919812345678", "body": "hi"}'
            post = (
                b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            head = exchange(sock, post)
            assert head.startswith(b"HTTP/1.1 401")  # a problem+json body, no key
            counts.append(data_segments_in(sock))
            assert counts == [1, 2, 3, 4]

            # An interim 100 Continue goes out by itself before the client sends the body.
            sock.sendall(
                b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer %s\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % (key.encode(), len(body))
            )
            interim = b""
            while b"\r\n\r\n" not in interim:
                interim += sock.recv(65536)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            assert exchange(sock, body).startswith(b"HTTP/1.1 202")
        finally:
            sock.close()
