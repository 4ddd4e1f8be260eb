"""What each message costs the embedded store, step by step: statements, commits and CPU.

Drives the SQLite store directly, through the ``Store`` interface, along the real path of a
live message with a callback URL: accept (single messages, 50 at a time, as 50 API clients
would), claim, carrier acceptance (``mark_sent_many``), delivery receipt (``report_many``,
which hands its webhook events to the sender), webhook claim (of any not handed over) and
result. Batches are the sizes the dispatcher's coalescers form under load (--batch). Prints,
per step and per message: statements by kind, commits, and CPU time of the whole process (event
loop and writer thread).

    python bench/store_ops.py [--count 5000] [--batch 32]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from dakghar.core.ids import new_id
from dakghar.pipeline.accept import Acceptor, Draft
from dakghar.pipeline.switches import Switchboard
from dakghar.settings import StoreSettings
from dakghar.store.base import Sent, StatusChange, WebhookEvent, WebhookResult
from dakghar.store.sqlite.store import SqliteStore

HOOK = "https://app.example.com/hooks/sms"


class Step:
    def __init__(self, store: SqliteStore, name: str, n: int) -> None:
        self.store, self.name, self.n = store, name, n

    def __enter__(self) -> Step:
        w = self.store.writer
        self.s0 = dict(w.statements or {})
        self.c0 = w.commits
        self.t0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        w = self.store.writer
        cpu = time.process_time() - self.t0
        s1 = w.statements or {}
        kinds = {k: s1.get(k, 0) - self.s0.get(k, 0) for k in s1}
        kinds = {k: v for k, v in kinds.items() if v}
        framing = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
        data = {k: v for k, v in kinds.items() if k not in framing}
        total = sum(data.values()) / self.n
        shown = ", ".join(f"{k} {v / self.n:.2f}" for k, v in sorted(data.items()))
        overhead = sum(kinds.get(k, 0) for k in ("SAVEPOINT", "RELEASE")) / self.n
        commits = (w.commits - self.c0) / self.n
        ROWS.append((self.name, total, shown, overhead, commits, cpu * 1e6 / self.n))


ROWS: list[tuple[str, float, str, float, float, float]] = []


async def run(count: int, batch: int) -> None:
    tmp = tempfile.mkdtemp(prefix="dakghar-store-ops-")
    store = SqliteStore(f"sqlite:///{Path(tmp) / 'ops.db'}", StoreSettings(count_statements=True))
    await store.open()
    handed = 0
    try:
        account = await store.create_account(
            name="bench", balance_milli=10**12, default_sender="DKGHAR", callback_url=HOOK
        )
        acceptor = Acceptor(store, Switchboard(store))
        drafts = [Draft(to=f"+9198{i:08d}", body="Your order has shipped") for i in range(count)]

        async def accept_one(d: Draft) -> str:
            await acceptor.prepare(account)
            rows, errors = acceptor.build_many([d], account, sandbox=False)
            assert not errors, errors
            out = await acceptor.write(account, [r for _, r in rows], sandbox=False)
            return out.accepted[0].id

        ids: list[str] = []
        with Step(store, "accept (single POSTs, 50 at a time)", count):
            for i in range(0, count, 50):
                ids += await asyncio.gather(*(accept_one(d) for d in drafts[i : i + 50]))

        claimed = []
        with Step(store, "claim (up to 64 a call)", count):
            while len(claimed) < count:
                rows, _ = await store.claim(1, [account.id], 64, lease_ms=60_000)
                if not rows:
                    rows, _ = await store.claim(0, [account.id], 64, lease_ms=60_000)
                    rows2, _ = await store.claim(2, [account.id], 64, lease_ms=60_000)
                    rows += rows2
                assert rows, "nothing to claim"
                claimed += rows
        provider = {m.id: new_id("p") for m in claimed}

        with Step(store, f"carrier accepted (mark_sent_many, {batch} a call)", count):
            for i in range(0, count, batch):
                chunk = claimed[i : i + batch]
                await store.mark_sent_many([Sent(m.id, "sink", [provider[m.id]], 1) for m in chunk])

        # As the delivery process's sender does: the outbox events its writes make are handed
        # to it (Store.hand_off_webhooks), and only the others are claimed.
        events: list[WebhookEvent] = []
        store.hand_off_webhooks(events.extend, lambda: 256, lease_ms=60_000)
        with Step(store, f"receipt (report_many, {batch} a call)", count):
            for i in range(0, count, batch):
                chunk = claimed[i : i + batch]
                await store.report_many(
                    [("sink", provider[m.id], StatusChange("", "delivered")) for m in chunk]
                )
        store.hand_off_webhooks(None)
        handed = len(events)

        with Step(store, "webhook claim (64 a call; what was not handed over)", count):
            while True:
                got = await store.claim_webhooks(64, lease_ms=60_000)
                if not got:
                    break
                events += got
        assert len(events) == count, (len(events), count)

        with Step(store, f"webhook result ({batch} a call)", count):
            for i in range(0, count, batch):
                await store.webhook_results(
                    [WebhookResult(e.id, True, None, None) for e in events[i : i + batch]]
                )
    finally:
        await store.close()

    print(f"{count:,} live messages with a callback URL; batches of {batch}")
    print(f"webhook events handed to the sender as they were written: {handed:,}")
    head = f"{'step':48s} {'stmts/msg':>9s} {'savept':>6s} {'commits':>7s} {'CPU us/msg':>10s}"
    print(f"{head}  statements")
    tot_s = tot_c = tot_cpu = 0.0
    for name, total, shown, overhead, commits, cpu in ROWS:
        tot_s += total
        tot_c += commits
        tot_cpu += cpu
        print(f"{name:48s} {total:9.2f} {overhead:6.2f} {commits:7.3f} {cpu:10.1f}  {shown}")
    print(f"{'total':48s} {tot_s:9.2f} {'':6s} {tot_c:7.3f} {tot_cpu:10.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    asyncio.run(run(args.count, args.batch))


if __name__ == "__main__":
    main()
