"""Delivers the webhook outbox to applications: signed, retried, in order per message.

Status changes write webhook events into the store's outbox in the same transaction, so none is
lost. This worker claims due events (only the oldest pending one per message, so a message's
events arrive in status order), POSTs them with aiohttp, and records the outcome: a 2xx is done;
anything else is retried with exponential backoff and jitter for at least 24 hours, then marked
failed. Delivery is at-least-once; receivers dedupe on ``event_id``. It never blocks sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

import aiohttp

from dakghar.store.base import Store, WebhookEvent, now_ms
from dakghar.webhooks.signing import HEADER, sign

RETRY_WINDOW_MS = 24 * 3600 * 1000 + 60_000  # "at least 24 h"


def next_delay(attempt: int, rng: random.Random, base: float = 2.0, cap: float = 3600.0) -> float:
    """Seconds before retry number ``attempt`` (1-based): exponential, capped, full jitter."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return rng.uniform(ceiling / 2, ceiling)


class WebhookSender:
    """The outbox worker."""

    def __init__(
        self,
        store: Store,
        *,
        concurrency: int = 32,
        timeout: float = 10.0,
        poll_interval: float = 0.2,
        base_delay: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.concurrency = concurrency
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.base_delay = base_delay
        self.rng = rng or random.Random()
        self.delivered = 0
        self.failed_attempts = 0
        self._secrets: dict[str, tuple[float, str]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New events were written: look now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Start the worker."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            headers={"User-Agent": "Dakghar-Webhooks/1"},
        )
        self._task = asyncio.create_task(self._run(), name="dakghar-webhooks")

    async def stop(self) -> None:
        """Stop; events not yet delivered stay in the outbox for the next start."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            events = await self.store.claim_webhooks(self.concurrency * 4, lease_ms=60_000)
            if events:
                await asyncio.gather(*(self._deliver(e) for e in events))
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _secret(self, account_id: str) -> str | None:
        hit = self._secrets.get(account_id)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        account = await self.store.get_account(account_id)
        if account is None:
            return None
        self._secrets[account_id] = (time.monotonic() + 30, account.webhook_secret)
        return account.webhook_secret

    async def _deliver(self, event: WebhookEvent) -> None:
        assert self._session is not None
        secret = await self._secret(event.account_id)
        body = event.payload.encode()
        error: str | None = None
        if secret is None:
            error = "account no longer exists"
        else:
            headers = {
                "Content-Type": "application/json",
                HEADER: sign(secret, body, int(time.time())),
                "Dakghar-Event-Id": event.event_id,
            }
            try:
                async with self._session.post(event.url, data=body, headers=headers) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.delivered += 1
                        await self.store.webhook_result(
                            event.id, delivered=True, next_attempt_at=None, error=None
                        )
                        return
                    error = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
        self.failed_attempts += 1
        attempt = event.attempts + 1
        due = now_ms() + int(next_delay(attempt, self.rng, self.base_delay) * 1000)
        give_up = secret is None or due > event.created_at + RETRY_WINDOW_MS
        await self.store.webhook_result(
            event.id, delivered=False, next_attempt_at=None if give_up else due, error=error
        )
