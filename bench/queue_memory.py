"""Memory while a million messages wait: the queue lives in the store, not in the process.

Starts a standalone simulated carrier (`dakghar simulator`) and a `dakghar serve` whose only live
connector sends to it at a throttled 50 msg/s, so that what the API accepts piles up in the
queue. Posts --count messages through the batch API and samples the gateway's resident memory
(VmRSS) as the queue grows. Prints RSS at each quarter and the peak; "flat" means the growth is
the store's page cache and the interpreter, not a per-message cost.

    python bench/queue_memory.py [--count 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

from _harness import BIN, drive, free_port, gateway


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def server_pid(port: int) -> int:
    out = subprocess.check_output(["pgrep", "-f", f"serve --port {port}"], text=True)
    return int(out.split()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1_000_000)
    args = ap.parse_args()
    sim_port = free_port()
    sim = subprocess.Popen(
        [str(BIN), "simulator", "--port", str(sim_port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
    )
    config = (
        f'[[connectors]]\nname = "slow"\ntype = "smpp"\nhost = "127.0.0.1"\nport = {sim_port}\n'
        'system_id = "bench"\npassword = "bench"\nrate = 50\n\n'
        '[[routes]]\nconnectors = ["slow"]\n'
    )
    samples: list[tuple[int, float]] = []
    try:
        with gateway(mode="--live", config=config) as gw:
            time.sleep(1.0)
            pid = server_pid(gw.port)
            samples.append((0, rss_mb(pid)))
            quarter = max(1000, args.count // 4 // 1000 * 1000)
            sent = 0
            while sent < args.count:
                n = min(quarter, args.count - sent)
                bodies = [
                    json.dumps(
                        {"to": [f"+9198{(sent + b + i) % 10**8:08d}" for i in range(1000)],
                         "body": "Flash sale: 20% off today only", "type": "promotional"}
                    ).encode()
                    for b in range(0, n, 1000)
                ]  # fmt: skip
                asyncio.run(drive(gw.port, gw.key, "/v1/messages/batch", bodies, 4))
                sent += n
                time.sleep(2.0)  # let the dispatcher run with the bigger queue
                samples.append((sent, rss_mb(pid)))
            queued = gw.query("SELECT count(*) FROM messages WHERE status = 'queued'")[0][0]
    finally:
        sim.terminate()
        sim.wait(10)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    for n, mb in samples:
        print(f"  {n:>9,} accepted: gateway RSS {mb:6.1f} MB")
    print(f"{queued:,} still queued at the end; peak RSS {max(mb for _, mb in samples):.1f} MB")


if __name__ == "__main__":
    main()
