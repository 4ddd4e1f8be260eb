"""A gateway fleet on the real PostgreSQL: ``serve --role api`` and ``--role dispatcher``
processes over one database, each with its own data directory, as on separate hosts.

Used by ``test_fleet.py``; the carrier is the SMPP simulator in the test's process, and the
application is a webhook receiver in a thread of it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests import pg
from tests.e2e.server import free_port

SECRET = "fleet-test-" + "s" * 32


def config_text(carrier_port: int, *, window: int = 50, rate: int = 0, extra: str = "") -> str:
    """A dakghar.toml with one SMPP carrier, the only route, and webhooks to loopback."""
    return (
        "[webhooks]\nallow_private_networks = true\n\n"
        "[[connectors]]\n"
        'name = "carrier"\ntype = "smpp"\nhost = "127.0.0.1"\n'
        f'port = {carrier_port}\nsystem_id = "dakghar"\npassword = "secret"\n'
        f"window = {window}\nrate = {rate}\n\n"
        '[[routes]]\nconnectors = ["carrier"]\n' + extra
    )


@dataclass
class Receiver:
    """The application: counts the webhooks it is sent, by message and status."""

    port: int
    got: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def finals(self) -> dict[str, str]:
        with self.lock:
            return {mid: status for (mid, status) in self.got if status != "sending"}


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free loopback port."""
    port = free_port()
    rec = Receiver(port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with rec.lock:
                rec.got[(body["message_id"], body["status"])] += 1
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Fleet:
    """The processes of one fleet and how to reach them."""

    tmp: Path
    url: str  # the database
    config: Path
    env: dict[str, str]
    apis: list[tuple[int, subprocess.Popen[bytes]]] = field(default_factory=list)
    dispatchers: list[tuple[Path, subprocess.Popen[bytes]]] = field(default_factory=list)

    def cli(self, *args: str) -> str:
        return subprocess.check_output(
            [sys.executable, "-m", "dakghar.cli.main", "--config", str(self.config), *args],
            env=self._env(self.tmp / "cli"),
            text=True,
        ).strip()

    def _env(self, data_dir: Path) -> dict[str, str]:
        data_dir.mkdir(parents=True, exist_ok=True)
        return {**self.env, "DAKGHAR_DATA_DIR": str(data_dir)}

    def start_api(self) -> int:
        port = free_port()
        i = len(self.apis)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dakghar.cli.main", "serve", "--role", "api",
             "--config", str(self.config), "--port", str(port)],
            env=self._env(self.tmp / f"api{i}"),
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"api{i}.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        self.apis.append((port, proc))
        wait_port(port, proc, self.tmp / f"api{i}.log")
        return port

    def start_dispatcher(self) -> Path:
        i = len(self.dispatchers)
        data = self.tmp / f"dispatcher{i}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "dakghar.cli.main", "serve", "--role", "dispatcher",
             "--config", str(self.config)],
            env=self._env(data),
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"dispatcher{i}.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        self.dispatchers.append((data, proc))
        deadline = time.monotonic() + 30
        while self.state(data) is None:
            assert proc.poll() is None, (self.tmp / f"dispatcher{i}.log").read_text()
            assert time.monotonic() < deadline, "the dispatcher wrote no state"
            time.sleep(0.1)
        return data

    def state(self, data: Path) -> dict[str, Any] | None:
        """A dispatcher's state snapshot (``dakghar-state.json`` in its data directory)."""
        try:
            snap: dict[str, Any] = json.loads((data / "dakghar-state.json").read_text())
        except (OSError, ValueError):
            return None
        return snap if snap.get("owner") else None

    def counts(self) -> dict[str, int]:
        return dict(self.query("SELECT status, count(*) FROM messages GROUP BY status"))

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql, params or None).fetchall())

    def stop(self) -> None:
        procs = [p for _, p in self.apis] + [p for _, p in self.dispatchers]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(25)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``port`` accepts connections (the API listens)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the API did not start: {log.read_text()[-2000:]}")


@contextmanager
def fleet(tmp: Path, config: str, **env: str) -> Iterator[Fleet]:
    """A fresh database and the environment for its processes; stops them all at the end."""
    url = pg.create()
    path = tmp / "dakghar.toml"
    path.write_text(config)
    base = {k: v for k, v in os.environ.items() if not k.startswith("DAKGHAR_")}
    base.update(
        DAKGHAR_DATABASE_URL=url,
        DAKGHAR_SECRET_KEY=SECRET,
        DAKGHAR_LOG_LEVEL="warning",
        **env,
    )
    f = Fleet(tmp, url, path, base)
    try:
        yield f
    finally:
        f.stop()


def post(port: int, key: str, path: str, body: object) -> tuple[int, dict[str, Any]]:
    """POST JSON; the status and the decoded answer."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
