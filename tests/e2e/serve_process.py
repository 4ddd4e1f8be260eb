"""A real ``dakghar serve`` subprocess on loopback, for the listener and start-up tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.server import free_port


def serve_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DAKGHAR_") and key != "AIRTEL_SMPP_PASSWORD"
    }
    env.update(
        DAKGHAR_DATA_DIR=str(tmp),
        DAKGHAR_DATABASE_URL=f"sqlite:///{tmp}/serve.db",
        DAKGHAR_SECRET_KEY="serve-test-" + "s" * 32,
        DAKGHAR_LOG_LEVEL="warning",
    )
    env.update(extra)
    return env


def serve_command(config: Path, port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "dakghar.cli.main", "serve", "--config", str(config),
            "--port", str(port), *args]  # fmt: skip


def run_serve(
    tmp: Path, toml: str, *args: str, port: int | None = None, timeout: float = 30, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``serve`` expecting it to stop by itself (a refusal); its output as text."""
    config = tmp / "dakghar.toml"
    config.write_text(toml)
    return subprocess.run(
        serve_command(config, port if port is not None else free_port(), *args),
        env=serve_env(tmp, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Served:
    port: int
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@contextmanager
def serving(tmp: Path, toml: str = "", *args: str, **env: str) -> Iterator[Served]:
    """Start ``serve`` and wait until /healthz answers; stop it afterwards."""
    config = tmp / "dakghar.toml"
    config.write_text(toml)
    port = free_port()
    out, err = tmp / "serve.out", tmp / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            serve_command(config, port, *args), env=serve_env(tmp, **env),
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
    served = Served(port, proc, out, err)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"serve exited: {err.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"serve did not start: {err.read_text()[-2000:]}"
            try:
                if get(f"{served.url}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and its Content-Length body) from a kept-alive connection;
    an ``AssertionError`` if the server closes it first."""
    data = b""

    def more() -> None:
        nonlocal data
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before its response was whole"
        data += chunk

    while b"\r\n\r\n" not in data:
        more()
    head = data.partition(b"\r\n\r\n")[0]
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(data) < len(head) + 4 + length:
        more()
    return data
