"""Accept-path benchmark: POST /v1/messages (and /batch) against a real `dakghar serve`.

Starts the gateway as a subprocess on loopback with a fresh SQLite database, then drives it with a
small raw-asyncio HTTP/1.1 keep-alive client (so the client costs as little CPU as possible on a
shared 2-core box). Prints messages/s and p50/p99 latency, medians over runs.

    python bench/accept.py [--requests 20000] [--concurrency 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "dakghar"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.check_output([str(BIN), *args], env=env, text=True).strip()


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, head: bytes, body: bytes) -> int:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def drive(port: int, key: str, path: str, bodies: list[bytes], conc: int) -> dict[str, float]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    conns = [Conn(*await asyncio.open_connection("127.0.0.1", port)) for _ in range(conc)]
    latencies: list[float] = []
    errors = 0
    it = iter(bodies)

    async def worker(c: Conn) -> None:
        nonlocal errors
        for body in it:
            t0 = time.perf_counter()
            status = await c.post(head, body)
            latencies.append(time.perf_counter() - t0)
            if status != 202:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.writer.close()
    latencies.sort()
    return {
        "requests_per_s": len(bodies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--batches", type=int, default=100, help="batch requests of 1,000 per run")
    ap.add_argument("--batch-concurrency", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="dakghar-bench-")
    env = {
        **os.environ,
        "DAKGHAR_DATA_DIR": tmp,
        "DAKGHAR_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
        "DAKGHAR_LOG_LEVEL": "warning",
    }
    acc = cli(env, "accounts", "create", "bench", "--balance", "100000000",
              "--rate", "1000000", "--burst", "1000000")  # fmt: skip
    key = cli(env, "keys", "create", acc, "--live")
    port = free_port()
    server = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        single = [
            json.dumps(
                {"to": f"+9198{i % 10**8:08d}", "body": f"Your order {i} has shipped"}
            ).encode()
            for i in range(args.requests)
        ]
        batch = [
            json.dumps({"to": [f"+9170{(b * 1000 + i) % 10**8:08d}" for i in range(1000)],
                        "body": "Flash sale: 20% off today only"}).encode()
            for b in range(args.batches)
        ]  # fmt: skip
        asyncio.run(drive(port, key, "/v1/messages", single[:500], args.concurrency))  # warm-up
        singles, batches = [], []
        for _ in range(args.runs):
            singles.append(asyncio.run(drive(port, key, "/v1/messages", single, args.concurrency)))
            batches.append(
                asyncio.run(drive(port, key, "/v1/messages/batch", batch, args.batch_concurrency))
            )
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    def med(rows: list[dict[str, float]], k: str) -> float:
        return statistics.median(r[k] for r in rows)

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
          "server and client share the box")  # fmt: skip
    for label, rows, scale, conc in (
        ("single  POST /v1/messages      ", singles, 1, args.concurrency),
        ("batch   POST /v1/messages/batch", batches, 1000, args.batch_concurrency),
    ):
        rate = med(rows, "requests_per_s") * scale
        print(
            f"{label} c={conc:<3} {rate:>9,.0f} msg/s  p50 {med(rows, 'p50_ms'):6.1f} ms  "
            f"p99 {med(rows, 'p99_ms'):6.1f} ms per request  errors {int(med(rows, 'errors'))}"
        )
    print(f"(medians of {args.runs} runs)")


if __name__ == "__main__":
    main()
