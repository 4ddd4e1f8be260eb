"""Webhook delivery to a real local HTTP receiver: signed, retried, in order, at-least-once."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import pytest
from aiohttp import web

from dakghar.store.base import StatusChange
from dakghar.store.sqlite import SqliteStore
from dakghar.webhooks.sender import WebhookSender, next_delay
from dakghar.webhooks.signing import sign, verify
from tests.store.test_pipeline_store import queue


def test_a_signature_verifies_only_for_its_body_secret_and_time() -> None:
    header = sign("whsec_1", b'{"a":1}', 1_700_000_000)
    assert verify("whsec_1", b'{"a":1}', header, now=1_700_000_010)
    assert not verify("whsec_1", b'{"a":2}', header, now=1_700_000_010)
    assert not verify("whsec_2", b'{"a":1}', header, now=1_700_000_010)
    assert not verify("whsec_1", b'{"a":1}', header, now=1_700_009_999)  # replayed too late
    assert not verify("whsec_1", b"", "garbage", now=0)


def test_retry_delays_grow_and_stay_under_the_cap() -> None:
    rng = random.Random(1)
    delays = [next_delay(n, rng) for n in range(1, 20)]
    assert all(0 < d <= 3600 for d in delays)
    assert delays[0] < delays[5] < 3600


class Receiver:
    """A local application endpoint that fails the first ``fail`` calls."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls: list[tuple[dict[str, object], str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append((json.loads(body), request.headers["Dakghar-Signature"]))
        self.raw = body
        if len(self.calls) <= self.fail:
            return web.Response(status=503)
        return web.Response(status=204)


@pytest.fixture
async def receiver_url() -> tuple[Receiver, str]:
    receiver = Receiver(fail=2)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield receiver, f"http://127.0.0.1:{port}/hook"  # type: ignore[misc]
    await runner.cleanup()


async def test_events_are_retried_until_accepted_and_arrive_in_status_order(
    tmp_path: Path, receiver_url: tuple[Receiver, str]
) -> None:
    receiver, url = receiver_url
    store = SqliteStore(f"sqlite:///{tmp_path}/w.db")
    await store.open()
    acc = await store.create_account(name="a", balance_milli=0, webhook_events="sent")
    [mid] = await queue(store, acc.id, 1, callback_url=url, reference="order-9")
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    await store.mark_sent(mid, "smsc", ["p1"])
    await store.report("smsc", "p1", StatusChange("", "delivered"))
    sender = WebhookSender(  # the receiver is on loopback: allowed only with private networks
        store, poll_interval=0.02, base_delay=0.02, rng=random.Random(3), allow_private=True
    )
    await sender.start()
    try:
        deadline = time.monotonic() + 10
        while sender.delivered < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await sender.stop()
        await store.close()
    statuses = [body["status"] for body, _ in receiver.calls]
    # two failed tries of "sent", then "sent" succeeds, then "delivered": never out of order
    assert statuses == ["sent", "sent", "sent", "delivered"]
    ids = {body["event_id"] for body, _ in receiver.calls if body["status"] == "sent"}
    assert len(ids) == 1  # a retry carries the same event_id, so receivers can dedupe
    last_body, last_sig = receiver.calls[-1]
    assert last_body["message_id"] == mid and last_body["reference"] == "order-9"
    assert verify(acc.webhook_secret, receiver.raw, last_sig, now=int(time.time()))


async def test_a_slow_receiver_holds_up_only_its_own_slot(tmp_path: Path) -> None:
    arrived: list[tuple[str, float]] = []

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        arrived.append(("slow", time.monotonic()))
        return web.Response(status=200)

    async def fast(request: web.Request) -> web.Response:
        arrived.append(("fast", time.monotonic()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/slow", slow)
    app.router.add_post("/fast", fast)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    store = SqliteStore(f"sqlite:///{tmp_path}/w.db")
    await store.open()
    acc = await store.create_account(name="a", balance_milli=0)
    [slow_id] = await queue(store, acc.id, 1, callback_url=f"http://127.0.0.1:{port}/slow")
    fast_ids = await queue(store, acc.id, 30, callback_url=f"http://127.0.0.1:{port}/fast")
    for mid in [slow_id, *fast_ids]:  # the slow one's webhook is claimed first
        await store.apply([StatusChange(mid, "delivered")])
    # two connections: before, a batch of 8 waited for its slowest member before the next one
    sender = WebhookSender(store, concurrency=2, poll_interval=0.02, allow_private=True)
    started = time.monotonic()
    await sender.start()
    try:
        deadline = started + 10
        while sender.delivered < 31 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await sender.stop()
        await store.close()
        await runner.cleanup()
    fast_done = [at - started for kind, at in arrived if kind == "fast"]
    assert len(fast_done) == 30 and max(fast_done) < 2.0, fast_done  # none waited for "slow"
    assert [kind for kind, _ in arrived][-1] == "slow"
