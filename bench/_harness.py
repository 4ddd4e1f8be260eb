"""What the benchmark scripts share: a real `dakghar serve` subprocess and a lean HTTP client.

The gateway runs as its own process on loopback with a fresh SQLite database in a temporary
directory; the client is a small raw-asyncio HTTP/1.1 keep-alive client, so that it costs as
little CPU as possible on a shared 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent / "dakghar"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0.0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


def cpu_per_1000(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """CPU seconds per 1,000 messages of each process between two ``{name: cpu_seconds}``
    readings (a process missing from ``before`` counts from zero)."""
    return {k: (after[k] - before.get(k, 0.0)) * 1000 / count for k in after}


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the delivery process of ``serve``)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


@dataclass
class Gateway:
    """A running gateway: where it listens, a key, and its database file."""

    port: int
    key: str
    db: Path
    env: dict[str, str]
    database_url: str | None = None  # PostgreSQL (``--database-url``), else the SQLite file
    pid: int = 0  # the ``dakghar serve`` process

    def cpu_seconds(self) -> float:
        """User + system CPU of the serve process so far (its delivery child not counted)."""
        return cpu_seconds(self.pid)

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        """Read the gateway's database (WAL lets a reader in while it writes)."""
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True) as pg:
                return list(pg.execute(sql.replace("?", "%s"), args or None).fetchall())
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL ``server`` URL (dropped afterwards)."""
    import uuid

    import psycopg

    name = f"dk_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as pg:
        pg.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.check_output([str(BIN), *args], env=env, text=True).strip()


@contextmanager
def gateway(
    *,
    mode: str = "--live",
    config: str = "",
    serve_args: tuple[str, ...] = (),
    database_url: str | None = None,
) -> Iterator[Gateway]:
    """Start `dakghar serve` on a fresh database with one account and key of ``mode``
    (SQLite in a temporary directory, or the given PostgreSQL database)."""
    tmp = tempfile.mkdtemp(prefix="dakghar-bench-")
    db = Path(tmp) / "bench.db"
    env = {
        **os.environ,
        "DAKGHAR_DATA_DIR": tmp,
        "DAKGHAR_DATABASE_URL": database_url or f"sqlite:///{db}",
        "DAKGHAR_LOG_LEVEL": "warning",
    }
    config_file = Path(tmp) / "dakghar.toml"
    config_file.write_text(config)
    acc = cli(env, "accounts", "create", "bench", "--balance", "100000000",
              "--rate", "1000000", "--burst", "1000000", "--sender", "DKGHAR")  # fmt: skip
    key = cli(env, "keys", "create", acc, mode)
    port = free_port()
    server = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port), "--config", str(config_file), *serve_args],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield Gateway(port, key, db, env, database_url, server.pid)
    finally:
        server.terminate()
        server.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, head: bytes, body: bytes) -> int:
        return (await self.exchange(head, body))[0]

    async def exchange(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        """One request on the keep-alive connection: its status and body."""
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def post_head(path: str, key: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()


async def drive(
    port: int,
    key: str,
    path: str,
    bodies: list[bytes],
    conc: int,
    ok: int = 202,
    answers: list[bytes] | None = None,
) -> dict[str, float]:
    """POST every body as fast as ``conc`` connections allow; rate and latency.

    Statuses other than ``ok`` count as errors; ``answers`` (if given) collects every body.
    """
    head = post_head(path, key)
    conns = [await Conn.open(port) for _ in range(conc)]
    latencies: list[float] = []
    errors = 0
    it = iter(bodies)

    async def worker(c: Conn) -> None:
        nonlocal errors
        for body in it:
            t0 = time.perf_counter()
            status, answer = await c.exchange(head, body)
            latencies.append(time.perf_counter() - t0)
            if answers is not None:
                answers.append(answer)
            if status != ok:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    latencies.sort()
    return {
        "requests_per_s": len(bodies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
    }
