"""Does the SMPP window stay full? A carrier answering 50 ms late, window 64, messages waiting.

With a window of 64 and 50 ms per answer, one bind can carry at most 64 / 0.05 = 1,280
submit_sm/s; the gap to that is time the window spent waiting on the gateway (a claim, a store
write) instead of on the carrier. Unlike figure (d) of ``bench/vs_kannel.py``, which is bounded
by how fast single POSTs arrive, the messages here are queued first (batch POSTs, all scheduled for
the same moment a few seconds ahead), so the window is the only limit. Uses the same external sink
(``bench/_smpp_sink.py``, its own process) and a real ``dakghar serve``.

    python bench/window.py [--count 20000] [--window 64] [--resp-delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import drive, free_port, gateway

SINK = Path(__file__).resolve().parent / "_smpp_sink.py"


def config(port: int, window: int) -> str:
    return f"""
[[connectors]]
name = "sink"
type = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "bench"
password = "bench"
window = {window}
rate = 0

[[routes]]
connectors = ["sink"]
"""


def stats(path: Path) -> dict[str, float]:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--resp-delay", type=float, default=0.05)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dakghar-window-"))
    port = free_port()
    st = tmp / "sink.json"
    sink = subprocess.Popen(
        [sys.executable, str(SINK), "--port", str(port), "--stats", str(st),
         "--resp-delay", str(args.resp_delay), "--receipt-delay", "1.0"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with gateway(config=config(port, args.window)) as gw:
            while stats(st).get("binds", 0) < 1:
                time.sleep(0.05)
            # Every message falls due at the same moment, a few seconds from now.
            due = time.time() + 3 + args.count / 5000
            at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(due)) + "Z"
            bodies = []
            for start in range(0, args.count, 1000):
                n = min(1000, args.count - start)
                to = [f"+9198{(start + i) % 10**8:08d}" for i in range(n)]
                body = {"to": to, "body": "Your order has shipped", "schedule_at": at}
                bodies.append(json.dumps(body).encode())
            asyncio.run(drive(gw.port, gw.key, "/v1/messages/batch", bodies, 4))
            print(f"queued {args.count:,} messages, all due at {at}")
            deadline = time.monotonic() + 60 + args.count / 200
            while stats(st).get("submits", 0) < args.count and time.monotonic() < deadline:
                time.sleep(0.1)
            s = stats(st)
    finally:
        sink.terminate()
        sink.wait(10)
    n = int(s.get("submits", 0))
    span = s.get("last_submit", 0) - s.get("first_submit", 0)
    ceiling = args.window / args.resp_delay
    rate = n / span if span > 0 else float("nan")
    print(f"window {args.window}, carrier answering after {args.resp_delay * 1000:.0f} ms: "
          f"{n:,} submit_sm in {span:.1f} s = {rate:,.0f}/s "
          f"({rate / ceiling:.0%} of the window's {ceiling:,.0f}/s)")  # fmt: skip


if __name__ == "__main__":
    main()
