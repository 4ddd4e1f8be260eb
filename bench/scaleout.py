"""Scale-out: PostgreSQL beside SQLite, and fleets of api + dispatcher processes, in one run.

The workload of ``bench/vs_kannel.py`` (single ``POST /v1/messages`` at --conc, live routing to
an SMPP connector at ``bench/_smpp_sink.py`` with a receipt 1 s after each ``submit_sm_resp``,
a ``callback_url`` on every message) against these layouts, interleaved over --rounds:

  sqlite        ``dakghar serve`` (API process + delivery process) on SQLite
  pg            the same on PostgreSQL (127.0.0.1:5432, a fresh database per phase)
  pg-1api-1d    ``serve --role api`` + one ``serve --role dispatcher`` on PostgreSQL
  pg-1api-2d    ``serve --role api`` + two ``serve --role dispatcher`` on PostgreSQL

Figures per layout (medians): accept req/s and its p99 latency; first request -> all
"delivered" callbacks, msg/s; CPU seconds per 1,000 messages of each process; on PostgreSQL,
transactions and rows written per message (``pg_stat_database``). Floors checked: pg >= 0.8x
sqlite for accept and end to end; two dispatchers no slower than one.

The PostgreSQL layouts run as a fleet is meant to: with Redis (--redis, a database of its own,
emptied before each phase; --no-redis leaves it out) for the per-key limits, the wake-ups and
the bind leases. The connector's contract is two binds in every layout, so that two
dispatchers can each hold one (with one dispatcher, it holds both).

    python bench/scaleout.py [--rounds 3] [--count 10000] [--conc 50] [--only pg ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from _harness import BIN, children, cpu_per_1000, cpu_seconds, free_port, percentile
from vs_kannel import (
    TEXT,
    Callbacks,
    await_for,
    callback_app,
    cpu_model,
    dakghar_config,
    fmt,
    med,
    number,
    sink,
    wait_for,
)

LAYOUTS = ("sqlite", "pg", "pg-1api-1d", "pg-1api-2d")
PG = os.environ.get("DAKGHAR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("DAKGHAR_BENCH_REDIS", "redis://127.0.0.1:6379/9")
BINDS = 2


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (postmaster and backends)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def psql(url: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return list(cur.fetchall()) if cur.description else []


@dataclass
class Layout:
    """The processes of one layout, started on a fresh database."""

    name: str
    env: dict[str, str]
    port: int
    key: str
    db_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far per role (``serve``'s delivery child counted as ``delivery``),
        and of the PostgreSQL server's processes together (``postgres``)."""
        out = {}
        for role, proc in self.procs.items():
            out[role] = cpu_seconds(proc.pid)
            for child in children(proc.pid):
                out[f"{role}:delivery"] = cpu_seconds(child)
        if self.name != "sqlite":
            out["postgres"] = sum(cpu_seconds(pid) for pid in postgres_pids())
        return out


@contextmanager
def layout(name: str, sink_port: int, redis: str | None) -> Iterator[Layout]:
    tmp = Path(tempfile.mkdtemp(prefix=f"dakghar-scale-{name}-"))
    pg_db = None
    env = {**os.environ, "DAKGHAR_LOG_LEVEL": "warning", "DAKGHAR_SECRET_KEY": "bench-" + "s" * 40}
    env.pop("DAKGHAR_QUEUE_URL", None)
    if name == "sqlite":
        url = f"sqlite:///{tmp}/bench.db"
    else:
        pg_db = f"dk_bench_{uuid.uuid4().hex[:10]}"
        psql(PG, f'CREATE DATABASE "{pg_db}"')
        url = PG.rsplit("/", 1)[0] + "/" + pg_db
        if redis:
            import redis as redis_py

            redis_py.Redis.from_url(redis).flushdb()  # no leases or limits of an earlier phase
            env["DAKGHAR_QUEUE_URL"] = redis
    env["DAKGHAR_DATABASE_URL"] = url
    cfg = tmp / "dakghar.toml"
    # The connector and route of vs_kannel.py, with a contract of BINDS binds.
    cfg.write_text(dakghar_config(sink_port, binds=BINDS))

    def run(*args: str, data: str = "cli") -> str:
        (tmp / data).mkdir(exist_ok=True)
        e = {**env, "DAKGHAR_DATA_DIR": str(tmp / data)}
        return subprocess.check_output([str(BIN), "--config", str(cfg), *args], env=e,
                                       text=True).strip()  # fmt: skip

    acc = run("accounts", "create", "bench", "--balance", "100000000", "--rate", "1000000",
              "--burst", "1000000", "--sender", "DKGHAR")  # fmt: skip
    key = run("keys", "create", acc, "--live")
    port = free_port()
    lay = Layout(name, env, port, key, url)

    def start(role: str, *args: str) -> None:
        (tmp / role).mkdir(exist_ok=True)
        e = {**env, "DAKGHAR_DATA_DIR": str(tmp / role)}
        lay.procs[role] = subprocess.Popen(
            [str(BIN), "serve", "--config", str(cfg), *args], env=e, stdout=subprocess.DEVNULL
        )

    try:
        if name in ("sqlite", "pg"):
            start("serve", "--port", str(port))
        else:
            start("api", "--role", "api", "--port", str(port))
            for i in range(int(name.split("-")[-1][0])):
                start(f"dispatcher{i + 1}", "--role", "dispatcher")
        import socket

        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield lay
    finally:
        for proc in lay.procs.values():
            proc.terminate()
        for proc in lay.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_db:
            psql(PG, f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')


@dataclass
class Result:
    accept: float = float("nan")
    p99_ms: float = float("nan")
    e2e: float = float("nan")
    to_submit: float = float("nan")  # first request -> all submit_sm at the carrier, msg/s
    cpu_per_1000: dict[str, float] = field(default_factory=dict)
    tx_per_msg: float = float("nan")
    rows_per_msg: float = float("nan")
    note: str = ""


def pg_counters(url: str) -> tuple[int, int]:
    name = url.rsplit("/", 1)[1]
    [(commits, ins, upd, dele)] = psql(
        PG,
        "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
        f"WHERE datname = '{name}'",
    )
    return int(commits), int(ins) + int(upd) + int(dele)  # type: ignore[call-overload]


async def phase(
    name: str, tmp: Path, cb: Callbacks, cb_port: int, count: int, conc: int, redis: str | None
) -> Result:
    out = Result()
    cb.reset()
    with sink(tmp, resp_delay=0.0, receipt_delay=1.0) as s, layout(name, s.port, redis) as lay:
        if not wait_for(lambda: s.stats().get("binds", 0) >= BINDS, 60, f"{name} to bind"):
            out.note = "no bind"
            return out
        url = f"http://127.0.0.1:{lay.port}/v1/messages"
        headers = {"Authorization": f"Bearer {lay.key}", "Content-Type": "application/json"}
        hook = f"http://127.0.0.1:{cb_port}/dakghar"
        latencies: list[float] = []
        errors = 0
        cpu0 = lay.cpu()
        pg0 = pg_counters(lay.db_url) if name != "sqlite" else (0, 0)
        it = iter(range(count))
        connector = aiohttp.TCPConnector(limit=conc)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def worker() -> None:
                nonlocal errors
                for i in it:
                    body = json.dumps({"to": number(i), "body": TEXT, "callback_url": hook})
                    t0 = time.perf_counter()
                    try:
                        async with session.post(url, data=body, headers=headers) as r:
                            await r.read()
                            ok = r.status == 202
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    latencies.append(time.perf_counter() - t0)
                    errors += not ok

            start = time.time()
            await asyncio.gather(*(worker() for _ in range(conc)))
            end = time.time()
        out.accept = count / (end - start)
        latencies.sort()
        out.p99_ms = percentile(latencies, 0.99) * 1000
        expected = count - errors
        await await_for(lambda: len(cb.seen) >= expected, 60 + count / 50, f"{name} callbacks")
        if cb.seen:
            out.e2e = len(cb.seen) / (cb.last - start)
        await await_for(lambda: s.stats().get("submits", 0) >= expected, 10, f"{name} submits")
        st = s.stats()
        if st.get("submits"):
            out.to_submit = st["submits"] / (st["last_submit"] - start)
        cpu1 = lay.cpu()
        out.cpu_per_1000 = cpu_per_1000(cpu0, cpu1, count)
        if name != "sqlite":
            pg1 = pg_counters(lay.db_url)
            out.tx_per_msg = (pg1[0] - pg0[0]) / count
            out.rows_per_msg = (pg1[1] - pg0[1]) / count
        if errors or len(cb.seen) < expected:
            out.note = f"{errors} http errors, {len(cb.seen)} callbacks of {expected}"
    return out


async def run(args: argparse.Namespace) -> None:
    cb = Callbacks()
    runner, cb_port = await callback_app(cb)
    names = args.only or list(LAYOUTS)
    results: dict[str, list[Result]] = {n: [] for n in names}
    try:
        with tempfile.TemporaryDirectory(prefix="scaleout-") as tmpdir:
            for r in range(1, args.rounds + 1):
                for n in names:
                    res = await phase(n, Path(tmpdir), cb, cb_port, args.count, args.conc,
                                      None if args.no_redis else args.redis)  # fmt: skip
                    results[n].append(res)
                    cpu = ", ".join(f"{k} {v:.2f}" for k, v in sorted(res.cpu_per_1000.items()))
                    extra = (f"; tx/msg {res.tx_per_msg:.1f}, rows/msg {res.rows_per_msg:.1f}"
                             if res.tx_per_msg == res.tx_per_msg else "")  # fmt: skip
                    print(f"round {r} {n:11s}: accept {fmt(res.accept)} req/s (p99 "
                          f"{res.p99_ms:.0f} ms), to submit_sm {fmt(res.to_submit)}, end to end "
                          f"{fmt(res.e2e)} msg/s; CPU s/1000: "
                          f"{cpu}{extra}; {res.note or 'ok'}", flush=True)  # fmt: skip
    finally:
        await runner.cleanup()
    print()
    print(f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu_model()}, python "
          f"{platform.python_version()}; gateway, PostgreSQL, sink and load share it")  # fmt: skip
    print(f"workload: {args.count:,} single messages at concurrency {args.conc}, "
          f"{args.rounds} round(s) interleaved, medians; connector of {BINDS} binds; PostgreSQL "
          f"layouts {'without Redis' if args.no_redis else 'with Redis'}")  # fmt: skip
    print(
        f"{'layout':12s} {'accept':>8s} {'p99 ms':>7s} {'e2e':>8s} {'tx/msg':>7s} {'rows/msg':>8s}"
    )
    summary = {}
    for n in names:
        rs = results[n]
        a, p, e = (med([getattr(x, f) for x in rs]) for f in ("accept", "p99_ms", "e2e"))
        tx, rows = med([x.tx_per_msg for x in rs]), med([x.rows_per_msg for x in rs])
        summary[n] = (a, e)
        txs = "" if tx != tx else f"{tx:.1f}"
        rws = "" if rows != rows else f"{rows:.1f}"
        print(f"{n:12s} {fmt(a):>8s} {p:8.0f} {fmt(e):>8s} {txs:>8s} {rws:>8s}")
    checks = []
    if "sqlite" in summary and "pg" in summary:
        (sa, se), (pa, pe) = summary["sqlite"], summary["pg"]
        checks += [(f"pg accept >= 0.8x sqlite ({pa / sa:.2f}x)", pa >= 0.8 * sa),
                   (f"pg end to end >= 0.8x sqlite ({pe / se:.2f}x)", pe >= 0.8 * se)]  # fmt: skip
    if "pg-1api-1d" in summary and "pg-1api-2d" in summary:
        one, two = summary["pg-1api-1d"][1], summary["pg-1api-2d"][1]
        checks.append((f"2 dispatchers no slower than 1 ({two / one:.2f}x)", two >= 0.95 * one))
    print("floors:")
    for label, met in checks:
        print(f"  {label}: {'met' if met else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--only", choices=LAYOUTS, action="append", help="measure only this layout")
    ap.add_argument("--redis", default=REDIS, help="Redis for the PostgreSQL layouts (emptied)")
    ap.add_argument("--no-redis", action="store_true", help="PostgreSQL layouts without Redis")
    args = ap.parse_args()
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        sys.exit("interrupted")


if __name__ == "__main__":
    main()
