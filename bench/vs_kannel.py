"""Dakghar vs Kannel on the same workload, interleaved in one run; prints both and the ratios.

Both gateways send to the same external carrier, ``bench/_smpp_sink.py`` (an SMPP 3.4 SMSC in
its own process, fresh per phase), and report deliveries to the same callback app (an aiohttp
server in this process); the same aiohttp load generator (keep-alive, --conc connections) sends
the same --count single messages to each:

- Dakghar: ``POST /v1/messages`` with a live key routed to an SMPP connector (window 64) at the
  sink, ``callback_url`` on each message (account default webhook_events: final only);
- Kannel: bearerbox + smsbox, ``GET /cgi-bin/sendsms`` with ``dlr-mask=1`` (delivered) and a
  ``dlr-url`` at the callback app; ``max-pending-submits = 64``.

Figures per gateway (median over --rounds, Dakghar and Kannel alternating):

  (a) accept rate while delivering: requests/s over the POST phase;
  (b) first request -> last submit_sm at the carrier: msg/s;
  (c) first request -> last "delivered" callback at the app: msg/s;
  (d) carrier answering 50 ms late (--resp-delay 0.05), window 64: submit_sm/s at the carrier
      (first to last submit_sm).

Floors: (b) >= 1.0x Kannel, (c) >= 1.0x, (a) >= 0.8x, (d) >= 1,150 submit_sm/s for Dakghar.

Beside the figures, each round prints the CPU seconds per 1,000 messages (from /proc, first
request to last callback) of each gateway process (Dakghar's API and delivery processes,
Kannel's bearerbox and smsbox), of the sink, and of this process (load generator and callback
app). On a 2-core box all of them share the cores, so the ratios follow these sums.

    python bench/vs_kannel.py [--rounds 3] [--count 20000] [--conc 50]
    python bench/vs_kannel.py --rounds 1 --count 5000          # quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from _harness import children, cpu_per_1000, cpu_seconds, free_port, gateway

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.interop.kannel import SMSC_ID, Kannel, SmscLink, find_box  # noqa: E402

SINK = Path(__file__).resolve().parent / "_smpp_sink.py"
TEXT = "Your order has shipped"
FIGURES = ("a", "b", "c", "d")
LABELS = {
    "a": "(a) accept rate while delivering, req/s",
    "b": "(b) first request -> all submit_sm at carrier, msg/s",
    "c": "(c) first request -> all delivered callbacks, msg/s",
    "d": "(d) carrier 50 ms late, window 64, submit_sm/s",
}


def number(i: int) -> str:
    return f"+9198{i % 10**8:08d}"


# --- the carrier ----------------------------------------------------------------------------


@dataclass
class Sink:
    port: int
    stats_path: Path
    pid: int

    def stats(self) -> dict[str, float]:
        try:
            return json.loads(self.stats_path.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}


@contextmanager
def sink(tmp: Path, resp_delay: float, receipt_delay: float) -> Iterator[Sink]:
    port = free_port()
    stats = tmp / f"sink-{port}.json"
    proc = subprocess.Popen(
        [sys.executable, str(SINK), "--port", str(port), "--stats", str(stats),
         "--resp-delay", str(resp_delay), "--receipt-delay", str(receipt_delay)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        s = Sink(port, stats, proc.pid)
        deadline = time.monotonic() + 15
        while not s.stats():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the SMPP sink did not start")
            time.sleep(0.05)
        yield s
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            print(f"  (timed out waiting for {what})", file=sys.stderr)
            return False
        time.sleep(0.05)
    return True


async def await_for(check: Callable[[], bool], timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            print(f"  (timed out waiting for {what})", file=sys.stderr)
            return False
        await asyncio.sleep(0.05)
    return True


# --- the callback app -----------------------------------------------------------------------


@dataclass
class Callbacks:
    """Counts distinct delivered callbacks (by message) and the last arrival time."""

    seen: set[str] = field(default_factory=set)
    last: float = 0.0
    other: int = 0

    def reset(self) -> None:
        self.seen.clear()
        self.last = 0.0
        self.other = 0

    def delivered(self, key: str) -> None:
        if key not in self.seen:
            self.seen.add(key)
            self.last = time.time()


async def callback_app(cb: Callbacks) -> tuple[web.AppRunner, int]:
    async def dakghar(request: web.Request) -> web.Response:
        event = await request.json()
        if event.get("status") == "delivered":
            cb.delivered(str(event.get("message_id")))
        else:
            cb.other += 1
        return web.Response(status=204)

    async def kannel(request: web.Request) -> web.Response:
        if request.query.get("type") == "1":
            cb.delivered(request.query.get("id", ""))
        else:
            cb.other += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/dakghar", dakghar)
    app.router.add_route("*", "/kannel", kannel)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


# --- the load generator ---------------------------------------------------------------------


async def load(
    count: int, conc: int, send: Callable[[aiohttp.ClientSession, int], Awaitable[bool]]
) -> tuple[float, float, int]:
    """``count`` requests over ``conc`` keep-alive connections: (start, end, errors)."""
    errors = 0
    it = iter(range(count))
    connector = aiohttp.TCPConnector(limit=conc, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal errors
            for i in it:
                try:
                    ok = await send(session, i)
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if not ok:
                    errors += 1

        start = time.time()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(conc))), 900)
        end = time.time()
    return start, end, errors


# --- one phase per gateway ------------------------------------------------------------------


@dataclass
class Phase:
    accept: float = float("nan")
    to_submit: float = float("nan")
    to_callback: float = float("nan")
    submit_rate: float = float("nan")
    errors: int = 0
    note: str = ""
    # CPU seconds per 1,000 messages from the first request to the last callback, by process
    cpu: dict[str, float] = field(default_factory=dict)


Send = Callable[[aiohttp.ClientSession, int], Awaitable[bool]]
Pids = Callable[[], dict[str, int]]  # the gateway's processes, by role


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each of ``pids`` and of this process (load + callback app)."""
    t = os.times()
    return {**{name: cpu_seconds(pid) for name, pid in pids.items()}, "load": t.user + t.system}


DELIVERY = "process"  # --delivery: where serve runs its delivery side
DELIVERY_NICE = 0  # --delivery-nice: [server] delivery_nice


def dakghar_config(sink_port: int, binds: int = 1) -> str:
    return f"""
[server]
delivery = "{DELIVERY}"
delivery_nice = {DELIVERY_NICE}

[webhooks]
allow_private_networks = true

[[connectors]]
name = "sink"
type = "smpp"
host = "127.0.0.1"
port = {sink_port}
system_id = "bench"
password = "bench"
window = 64
binds = {binds}

[[routes]]
connectors = ["sink"]
"""


class BenchKannel(Kannel):
    """The interop Kannel with a 64-deep SMPP window and quieter logs, no access log."""

    def config_text(self) -> str:
        text = super().config_text()
        text = text.replace(f'access-log = "{self.workdir / "access.log"}"\n', "")
        text = text.replace(
            "reconnect-delay = 1\n", "reconnect-delay = 1\nmax-pending-submits = 64\n"
        )
        return text


async def phase(
    gw_name: str,
    tmp: Path,
    cb: Callbacks,
    cb_port: int,
    count: int,
    conc: int,
    resp_delay: float,
) -> Phase:
    """One gateway, one fresh sink, ``count`` messages; figures a-c, or d when resp_delay > 0."""
    out = Phase()
    cb.reset()
    wait_s = 60 + count / 100
    with sink(tmp, resp_delay=resp_delay, receipt_delay=1.0) as s:
        dak = gw_name == "dakghar"
        ctx = dakghar_phase(s, cb_port) if dak else kannel_phase(s, cb_port, tmp)
        with ctx as (send, gw_pids):
            if not wait_for(lambda: s.stats().get("binds", 0) >= 1, 30, f"{gw_name} to bind"):
                out.note = "no bind"
                return out
            pids = {**gw_pids(), "sink": s.pid}
            cpu0 = cpu_now(pids)
            start, end, out.errors = await load(count, conc, send)
            out.accept = count / (end - start)
            expected = count - out.errors
            await await_for(
                lambda: s.stats().get("submits", 0) >= expected, wait_s, f"{gw_name} submit_sm"
            )
            st = s.stats()
            n = int(st.get("submits", 0))
            if resp_delay > 0:
                span = st["last_submit"] - st["first_submit"]
                out.submit_rate = n / span if span > 0 else float("nan")
                return out
            out.to_submit = n / (st["last_submit"] - start) if n else float("nan")
            await await_for(lambda: len(cb.seen) >= expected, wait_s, f"{gw_name} callbacks")
            out.cpu = cpu_per_1000(cpu0, cpu_now(pids), count)
            if cb.seen:
                out.to_callback = len(cb.seen) / (cb.last - start)
            if n < expected or len(cb.seen) < expected:
                out.note = f"only {n} submit_sm, {len(cb.seen)} callbacks of {expected}"
    return out


@contextmanager
def dakghar_phase(s: Sink, cb_port: int) -> Iterator[tuple[Send, Pids]]:
    with gateway(mode="--live", config=dakghar_config(s.port)) as gw:
        url = f"http://127.0.0.1:{gw.port}/v1/messages"
        headers = {"Authorization": f"Bearer {gw.key}", "Content-Type": "application/json"}
        hook = f"http://127.0.0.1:{cb_port}/dakghar"

        async def send(session: aiohttp.ClientSession, i: int) -> bool:
            body = json.dumps({"to": number(i), "body": TEXT, "callback_url": hook})
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                return r.status == 202

        def pids() -> dict[str, int]:
            kids = children(gw.pid)  # the delivery process
            return {"api": gw.pid, **({"delivery": kids[0]} if kids else {})}

        yield send, pids


@contextmanager
def kannel_phase(s: Sink, cb_port: int, tmp: Path) -> Iterator[tuple[Send, Pids]]:
    link = SmscLink("127.0.0.1", s.port, "bench", "bench")
    k = BenchKannel(link, Path(tempfile.mkdtemp(prefix="kannel-", dir=tmp)), log_level=2)
    with k:
        url = f"http://127.0.0.1:{k.sendsms_port}/cgi-bin/sendsms"

        async def send(session: aiohttp.ClientSession, i: int) -> bool:
            dlr = f"http://127.0.0.1:{cb_port}/kannel?type=%d&id={i}"
            params = {
                "username": k.username, "password": k.password, "smsc": SMSC_ID,
                "to": number(i)[1:], "text": TEXT, "dlr-mask": "1", "dlr-url": dlr,
            }  # fmt: skip
            async with session.get(url, params=params) as r:
                await r.read()
                return r.status == 202

        yield send, k.pids


# --- report ---------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_text(cpu: dict[str, float]) -> str:
    """``api 0.20 + delivery 0.30 = 0.50; sink 0.05, load 0.30``: the gateway's own processes
    summed, then the sink and this process (the load generator and the callback app)."""
    own = {k: v for k, v in cpu.items() if k not in ("sink", "load")}
    parts = " + ".join(f"{k} {v:.2f}" for k, v in own.items())
    rest = ", ".join(f"{k} {cpu[k]:.2f}" for k in ("sink", "load") if k in cpu)
    return f"{parts} = {sum(own.values()):.2f}; {rest}" if own else rest


def med(values: list[float]) -> float:
    good = [v for v in values if v == v]
    return statistics.median(good) if good else float("nan")


def fmt(v: float) -> str:
    return "n/a" if v != v else f"{v:,.0f}"


async def run(args: argparse.Namespace) -> None:
    cb = Callbacks()
    runner, cb_port = await callback_app(cb)
    results: dict[str, dict[str, list[float]]] = {
        g: {f: [] for f in FIGURES} for g in ("dakghar", "kannel")
    }
    cpu: dict[str, dict[str, list[float]]] = {"dakghar": {}, "kannel": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="vs-kannel-") as tmpdir:
            tmp = Path(tmpdir)
            for r in range(1, args.rounds + 1):
                for g in args.only or ("dakghar", "kannel"):
                    main = await phase(g, tmp, cb, cb_port, args.count, args.conc, 0.0)
                    late = await phase(g, tmp, cb, cb_port, args.count, args.conc, 0.05)
                    res = results[g]
                    res["a"].append(main.accept)
                    res["b"].append(main.to_submit)
                    res["c"].append(main.to_callback)
                    res["d"].append(late.submit_rate)
                    for name, v in main.cpu.items():
                        cpu[g].setdefault(name, []).append(v)
                    notes = "; ".join(x for x in (main.note, late.note) if x) or "ok"
                    print(
                        f"round {r} {g:8s}: (a) {fmt(main.accept)} (b) {fmt(main.to_submit)} "
                        f"(c) {fmt(main.to_callback)} (d) {fmt(late.submit_rate)}; "
                        f"http errors {main.errors}+{late.errors}; {notes}; "
                        f"CPU s/1000: {cpu_text(main.cpu)}",
                        flush=True,
                    )
    finally:
        await runner.cleanup()

    print()
    print(f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu_model()}, python "
          f"{platform.python_version()}; gateways, sink, callback app, load share it")  # fmt: skip
    print(f"workload: {args.count:,} single messages at concurrency {args.conc}, "
          f"{args.rounds} round(s) interleaved, medians")  # fmt: skip
    print(f"{'figure':56s} {'Dakghar':>9s} {'Kannel':>9s} {'ratio':>7s}")
    ratios = {}
    for f in FIGURES:
        d, k = med(results["dakghar"][f]), med(results["kannel"][f])
        ratio = d / k if k == k and k and d == d else float("nan")
        ratios[f] = ratio
        rs = "n/a" if ratio != ratio else f"{ratio:.2f}x"
        print(f"{LABELS[f]:56s} {fmt(d):>9s} {fmt(k):>9s} {rs:>7s}")
    d_late = med(results["dakghar"]["d"])
    floors = [
        ("(b) Dakghar/Kannel >= 1.0x", ratios["b"] >= 1.0),
        ("(c) Dakghar/Kannel >= 1.0x", ratios["c"] >= 1.0),
        ("(a) Dakghar/Kannel >= 0.8x", ratios["a"] >= 0.8),
        ("(d) Dakghar >= 1,150 submit_sm/s", d_late >= 1150),
    ]
    print("CPU seconds per 1,000 messages, first request to last callback (medians):")
    for g, by in cpu.items():
        if by:
            print(f"  {g}: {cpu_text({name: med(v) for name, v in by.items()})}")
    print("floors:")
    for name, met in floors:
        print(f"  {name}: {'met' if met else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument(
        "--delivery",
        choices=("process", "inline"),
        default="process",
        help="Dakghar's [server] delivery: a second process (default) or inline",
    )
    ap.add_argument(
        "--delivery-nice",
        type=int,
        default=0,
        help="Dakghar's [server] delivery_nice (default 0, as shipped)",
    )
    ap.add_argument(
        "--only",
        choices=("dakghar", "kannel"),
        action="append",
        help="measure only this gateway (for profiling; ratios need both)",
    )
    args = ap.parse_args()
    global DELIVERY, DELIVERY_NICE
    DELIVERY, DELIVERY_NICE = args.delivery, args.delivery_nice
    if not (find_box("bearerbox") and find_box("smsbox")):
        sys.exit("Kannel (bearerbox, smsbox) is not installed")
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        sys.exit("interrupted; gateways, Kannel and sinks stopped")


if __name__ == "__main__":
    main()
