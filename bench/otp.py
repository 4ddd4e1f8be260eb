"""OTP benchmark: POST /v1/otp and POST /v1/otp/check against a real `dakghar serve`.

Starts the gateway as a subprocess on loopback with a fresh SQLite database and a sandbox key
(the built-in simulated carrier), then:
  1. sends --requests verifications as fast as --concurrency connections allow (each to a number
     in its own 1,000-number range, so the per-number and SMS-pumping limits stay out of the way);
  2. checks each of them once with a wrong code (a real atomic write per check);
  3. sends --paced verifications at --rate per second and reads OTP accept -> submit_sm latency
     from the gateway's own timestamps (messages.created_at / submitted_at).
Prints requests/s with p50/p99 per request, medians over --runs. If the delivery pipeline cannot
run in `dakghar serve`, step 3 is skipped and said so.

    python bench/otp.py [--requests 5000] [--concurrency 50] [--runs 3] [--paced 200 --rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time

from _harness import Conn, Gateway, drive, gateway, percentile, post_head


def number(i: int) -> str:
    # One number per 1,000-number range: "+91 98 <5 digits of i> 123".
    return f"+9198{i % 100_000:05d}123"


async def paced(gw: Gateway, count: int, rate: float, offset: int) -> list[str]:
    """Send ``count`` verifications at ``rate``/s on one connection; their message ids."""
    conn = await Conn.open(gw.port)
    head = post_head("/v1/otp", gw.key)
    ids = []
    for i in range(count):
        t0 = time.perf_counter()
        status, answer = await conn.exchange(head, json.dumps({"to": number(offset + i)}).encode())
        if status == 201:
            ids.append(json.loads(answer)["message_id"])
        await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
    conn.close()
    return ids


def latencies(gw: Gateway, message_ids: list[str], wait: float = 30.0) -> list[float]:
    """accept -> submit_sm accepted (ms) of those messages, once they have all been submitted."""
    marks = ",".join("?" * len(message_ids))
    sql = f"SELECT submitted_at - created_at FROM messages WHERE id IN ({marks})"
    deadline = time.monotonic() + wait
    while True:
        rows = gw.query(f"{sql} AND submitted_at IS NOT NULL", *message_ids)
        if len(rows) == len(message_ids) or time.monotonic() > deadline:
            return sorted(float(r[0]) for r in rows if isinstance(r[0], int))
        time.sleep(0.2)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


def measure(args: argparse.Namespace, delivery: bool) -> dict[str, object] | None:
    serve_args = () if delivery else ("--no-delivery",)
    with gateway(mode="--sandbox", serve_args=serve_args) as gw:
        if not listening(gw.port):
            return None
        sends, checks = [], []
        for run in range(args.runs):
            base = (run + 1) * args.requests
            bodies = [json.dumps({"to": number(base + i)}).encode() for i in range(args.requests)]
            answers: list[bytes] = []
            sends.append(
                asyncio.run(
                    drive(gw.port, gw.key, "/v1/otp", bodies, args.concurrency, 201, answers)
                )
            )
            ids = [json.loads(a)["id"] for a in answers if a.startswith(b'{"id":"otp_')]
            wrong = [json.dumps({"id": i, "code": "0000000"}).encode() for i in ids]
            checks.append(
                asyncio.run(drive(gw.port, gw.key, "/v1/otp/check", wrong, args.concurrency, 200))
            )
        lat: list[float] = []
        if delivery and args.paced:
            time.sleep(2.0)  # let the burst drain so the paced sends see an idle lane
            ids = asyncio.run(paced(gw, args.paced, args.rate, 0))
            lat = latencies(gw, ids)
        return {"sends": sends, "checks": checks, "latency": lat, "paced": args.paced}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--paced", type=int, default=200, help="verifications for the latency run")
    ap.add_argument("--rate", type=float, default=50.0, help="paced sends per second")
    args = ap.parse_args()

    result = measure(args, delivery=True)
    delivery = result is not None
    if result is None:
        result = measure(args, delivery=False)
    assert result is not None, "dakghar serve did not start"

    def med(rows: object, k: str) -> float:
        return statistics.median(r[k] for r in rows)  # type: ignore[attr-defined]

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
          "server, simulated carrier and client share the box")  # fmt: skip
    for label, rows, code in (
        ("POST /v1/otp       ", result["sends"], 201),
        ("POST /v1/otp/check ", result["checks"], 200),
    ):
        print(
            f"{label} c={args.concurrency:<3} {med(rows, 'requests_per_s'):>7,.0f} req/s  "
            f"p50 {med(rows, 'p50_ms'):6.1f} ms  p99 {med(rows, 'p99_ms'):6.1f} ms  "
            f"non-{code} {int(med(rows, 'errors'))}"
        )
    print(f"(medians of {args.runs} runs of {args.requests} requests; checks use a wrong code)")
    lat = result["latency"]
    assert isinstance(lat, list)
    if not delivery:
        print("OTP accept->submit latency: not measured (delivery pipeline not runnable here)")
    elif lat:
        print(
            f"OTP accept->submit_sm accepted, {len(lat)} of {result['paced']} paced at "
            f"{args.rate:g}/s: p50 {percentile(lat, 0.5):.0f} ms  "
            f"p99 {percentile(lat, 0.99):.0f} ms"
        )
    else:
        print("OTP accept->submit latency: no message was submitted within 30 s")


if __name__ == "__main__":
    main()
