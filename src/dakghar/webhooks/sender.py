"""Delivers the webhook outbox to applications: signed, retried, in order per message.

Status changes write webhook events into the store's outbox in the same transaction, so none is
lost. This worker claims due events (only the oldest pending one per message, so a message's
events arrive in status order), POSTs them (``webhooks/client.py``), and records the outcome: a
2xx is done; anything else is retried with exponential backoff and jitter for at least 24 hours,
then marked failed. Delivery is at-least-once; receivers dedupe on ``event_id``. It never blocks
sending.

Callbacks are chosen by API clients, so every delivery is guarded against SSRF (docs/webhooks.md):
the URL is checked again with ``check_callback_url`` (it may predate the rule, or the setting may
have changed), redirects are never followed (a 3xx is a failed attempt), and a resolver that drops
private, loopback, link-local, multicast and own addresses is the only one the client uses.
A URL that fails the check can never succeed, so its event fails at once; a host name that
resolves only to refused addresses is retried with the usual backoff, since DNS can change.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from dakghar.errors import InvalidCallbackUrl
from dakghar.observability.logging import get_logger
from dakghar.pipeline.batching import BUSY_GAP, Coalescer
from dakghar.store.base import Account, Store, WebhookEvent, WebhookResult, now_ms
from dakghar.webhooks.client import WebhookClient
from dakghar.webhooks.resolver import GuardedResolver
from dakghar.webhooks.signing import HEADER, sign
from dakghar.webhooks.urls import check_callback_url, gateway_addresses

if TYPE_CHECKING:
    from dakghar.settings import Settings

log = get_logger("dakghar.webhooks")
RETRY_WINDOW_MS = 24 * 3600 * 1000 + 60_000  # "at least 24 h"
LEASE_MS = 60_000  # an event claimed or handed over is this sender's for this long


def _written(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:  # the lease brings the event back
        log.warning("webhook outcome not recorded", error=type(fut.exception()).__name__)


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
        allow_private: bool = False,
        own: Collection[tuple[str, int]] = (),
    ) -> None:
        self.store = store
        self.allow_private = allow_private
        self.own = own
        self.concurrency = concurrency
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.base_delay = base_delay
        self.rng = rng or random.Random()
        self.delivered = 0
        self.failed_attempts = 0
        self._secrets: dict[str, tuple[float, Account]] = {}
        self._checked: dict[str, str | None] = {}  # _refusal's answers by URL
        self._client: WebhookClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._wake = asyncio.Event()
        self._news = False  # wake(): events were written since the last claim
        # Events waiting for a free slot: claimed ahead, or handed over by this process's
        # writes (Store.hand_off_webhooks). ``ahead`` bounds both.
        self._ready: deque[WebhookEvent] = deque()
        self._slots = concurrency * 2  # the connector opens `concurrency`; the rest wait briefly
        self._ahead = self._slots * 4
        # An outcome holds nothing up (its slot is already free): it lingers for company.
        self._results: Coalescer[WebhookResult, None] = Coalescer(
            self._write_results, linger=BUSY_GAP / 4
        )

    async def _write_results(self, results: list[WebhookResult]) -> list[None]:
        await self.store.webhook_results(results)
        return [None] * len(results)

    @classmethod
    def from_settings(cls, store: Store, settings: Settings, **options: Any) -> WebhookSender:
        """A sender with the timeout and private-network rule of ``[webhooks]``."""
        return cls(
            store,
            timeout=settings.webhooks.timeout_seconds,
            allow_private=settings.webhooks.allow_private_networks,
            own=gateway_addresses(settings),
            **options,
        )

    def wake(self) -> None:
        """New events were written: look now rather than at the next poll."""
        self._news = True
        self._wake.set()

    def _take(self, events: list[WebhookEvent]) -> None:
        """Events this process just wrote, leased to this sender (``Store.hand_off_webhooks``)."""
        if self._running:
            self._ready.extend(events)
            self._wake.set()
        # Not running (stopping): they stay leased, and are claimed once their lease ends.

    def _room(self) -> int:
        return self._ahead - len(self._ready) if self._running else 0

    async def start(self) -> None:
        """Start the worker."""
        # No HTTP(S)_PROXY from the environment, and no redirects (WebhookClient follows
        # neither): a proxy would connect on our behalf to addresses the resolver never saw.
        self._client = WebhookClient(
            GuardedResolver(allow_private=self.allow_private, own=self.own),
            timeout=self.timeout,
            limit=self.concurrency,
            user_agent="Dakghar-Webhooks/1",
        )
        self._running = True
        self.store.hand_off_webhooks(self._take, self._room, lease_ms=LEASE_MS)
        self._task = asyncio.create_task(self._run(), name="dakghar-webhooks")

    async def stop(self) -> None:
        """Stop; events not yet delivered stay in the outbox for the next start."""
        # The flag as well as the cancel: on Python 3.11, asyncio.wait_for can swallow a
        # cancellation that arrives as its inner wait completes, and the loop would go on.
        self._running = False
        self.store.hand_off_webhooks(None)
        self._wake.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client:
            await self._client.close()

    async def _run(self) -> None:
        # A rolling pool: a freed slot is refilled at once, so one slow receiver holds up only
        # its own slot, not a whole batch (deliveries were awaited batch by batch before).
        # Events are claimed ahead, in the background, into ``ready``: a freed slot is refilled
        # from memory, not after a claim through the store's writer. ``ahead`` is enough for the
        # slots to run through while the next claim waits its turn in that writer (100-160 ms
        # under load on PostgreSQL, where a claim per freed slot capped the outbox at ~500
        # events/s). A crash leaves these leased until their lease ends (60 s), then they go.
        # Most events need no claim at all: this process's writes hand them over (``_take``).
        inflight: set[asyncio.Task[None]] = set()
        ready, slots, ahead = self._ready, self._slots, self._ahead
        claim: tuple[asyncio.Task[list[WebhookEvent]], int] | None = None  # (task, asked)
        next_claim = 0.0  # after a claim that found less than it asked: a poll interval on
        last_claim, drained = 0.0, False

        def finished(task: asyncio.Task[None]) -> None:
            inflight.discard(task)
            self._wake.set()

        try:
            while self._running:
                while ready and len(inflight) < slots:
                    task = asyncio.create_task(self._deliver_safely(ready.popleft()))
                    inflight.add(task)
                    task.add_done_callback(finished)
                if claim is not None and claim[0].done():
                    (done, asked), claim = claim, None
                    try:
                        events = done.result()
                    except Exception:
                        log.exception("claiming webhook events failed")
                        events = []
                    ready.extend(events)
                    drained = len(events) < asked
                    if drained:
                        next_claim = time.monotonic() + self.poll_interval
                    continue
                if self._news:
                    # New events were written: look now; or, if the last claim emptied the
                    # outbox and there is work in hand, BUSY_GAP after it, to take more than
                    # the few events one write announces. With a backlog, claims never wait.
                    busy = drained and bool(ready or inflight)
                    self._news, next_claim = False, last_claim + BUSY_GAP if busy else 0.0
                now = time.monotonic()
                if claim is None and len(ready) <= ahead // 2 and now >= next_claim:
                    asked, last_claim = ahead - len(ready), now
                    claim = (
                        asyncio.create_task(self.store.claim_webhooks(asked, lease_ms=LEASE_MS)),
                        asked,
                    )
                    claim[0].add_done_callback(lambda _t: self._wake.set())
                    continue
                self._wake.clear()
                wait = self.poll_interval
                if claim is None and next_claim > now:
                    wait = min(wait, next_claim - now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            # Unsent events (claimed ahead, or in flight) stay leased; they are sent again
            # when the lease ends.
            if claim is not None:
                claim[0].cancel()
                with contextlib.suppress(BaseException):
                    await claim[0]
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
            ready.clear()
            await self._results.close()

    async def _deliver_safely(self, event: WebhookEvent) -> None:
        try:
            await self._deliver(event)
        except Exception:  # one bad event must not stop the others; its lease brings it back
            log.exception("webhook delivery failed unexpectedly", event_id=event.event_id)

    def _refusal(self, url: str) -> str | None:
        """Why ``url`` is refused by ``check_callback_url`` (None: it is not). The answer
        depends only on the URL and this sender's settings, so it is remembered per URL."""
        if url in self._checked:
            return self._checked[url]
        try:
            check_callback_url(url, allow_private=self.allow_private, own=self.own)
            refusal = None
        except InvalidCallbackUrl as exc:
            refusal = f"refused: {exc.detail}"
        if len(self._checked) >= 4096:
            self._checked.clear()
        self._checked[url] = refusal
        return refusal

    async def _secret(self, account_id: str) -> list[str] | None:
        """The account's signing secrets (cached briefly: a rotation shows within 5 s)."""
        hit = self._secrets.get(account_id)
        if hit is None or hit[0] <= time.monotonic():
            account = await self.store.get_account(account_id)
            if account is None:
                return None
            hit = self._secrets[account_id] = (time.monotonic() + 5, account)
        return hit[1].signing_secrets(now_ms())

    async def _deliver(self, event: WebhookEvent) -> None:
        assert self._client is not None
        secret = await self._secret(event.account_id)
        body = event.payload.encode()
        # A refused URL (an address literal in it, say) can never succeed: no retry.
        error = self._refusal(event.url)
        permanent = error is not None
        if secret is None:
            error, permanent = "account no longer exists", True
        elif error is None:
            headers = {
                "Content-Type": "application/json",
                HEADER: sign(secret, body, int(time.time())),
                "Dakghar-Event-Id": event.event_id,
            }
            try:
                # A redirect could lead anywhere, internal addresses included (API.md:
                # "Callbacks never follow redirects"): WebhookClient never follows one.
                status = await self._client.post(event.url, body, headers)
            except (OSError, TimeoutError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
            else:
                if 200 <= status < 300:
                    self.delivered += 1
                    await self._record(WebhookResult(event.id, True, None, None))
                    return
                error = f"HTTP {status}"
                if 300 <= status < 400:
                    error += ": redirect not followed"
        self.failed_attempts += 1
        attempt = event.attempts + 1
        due = now_ms() + int(next_delay(attempt, self.rng, self.base_delay) * 1000)
        give_up = permanent or due > event.created_at + RETRY_WINDOW_MS
        await self._record(WebhookResult(event.id, False, None if give_up else due, error))

    async def _record(self, result: WebhookResult) -> None:
        """Hand the attempt's outcome to the next batch write, and free the delivery's slot
        without waiting for that commit: the event stays leased until it lands, and if it
        never does (a crash), the lease ends and the event is sent again (at least once).
        Only a backlog of unwritten outcomes makes the slot wait."""
        written = self._results.submit(result)
        if self._results.backlog > self.concurrency * 8:
            await written
        else:
            written.add_done_callback(_written)
