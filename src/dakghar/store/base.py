"""The store interface: what the rest of Dakghar may ask of persistence.

Records are plain slotted dataclasses whose fields are the schema's columns. Implementations:
``store.sqlite`` (embedded default) and, for scale-out, PostgreSQL. Nothing outside ``store/``
knows which one it talks to; every query that reads account data takes the ``account_id``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dakghar.store.campaigns import CampaignStore
from dakghar.store.compliance import ComplianceStore
from dakghar.store.rollups import StatsRow


def new_webhook_secret() -> str:
    """A fresh account webhook secret (``whsec_`` and 256 random bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch (the store's time unit)."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class Account:
    """An account: the unit of ownership, billing and limits."""

    id: str
    name: str
    balance_milli: int
    price_milli_per_segment: int
    default_region: str
    default_sender: str | None
    allowed_countries: str | None
    segment_limit: int
    webhook_secret: str
    callback_url: str | None
    rate_per_second: int
    rate_burst: int
    smart_encoding: bool
    dlt_enforced: bool
    sending_paused: bool
    retention_days: int
    created_at: int
    webhook_events: str = "final"  # which status changes are POSTed (core.message.WebhookEvents)
    inbound_url: str | None = None  # where inbound messages are POSTed
    previous_webhook_secret: str | None = None  # still signs until previous_secret_expires_at
    previous_secret_expires_at: int | None = None

    def signing_secrets(self, now: int) -> list[str]:
        """The secrets webhooks are signed with now: the current one, then the previous one
        for 24 h after a rotation."""
        old = self.previous_webhook_secret
        expires = self.previous_secret_expires_at
        if old and expires is not None and expires > now:
            return [self.webhook_secret, old]
        return [self.webhook_secret]

    @property
    def allowed_country_set(self) -> frozenset[str] | None:
        """Allowed destination countries, or None for all."""
        if not self.allowed_countries:
            return None
        return frozenset(c.strip().upper() for c in self.allowed_countries.split(",") if c.strip())


@dataclass(slots=True)
class ApiKey:
    """An API key as stored: only its hash, never the key."""

    id: str
    account_id: str
    mode: str
    key_hash: str
    name: str | None
    created_at: int
    revoked_at: int | None
    scopes: str = ""

    def has_scope(self, scope: str) -> bool:
        """Whether the key carries ``scope`` (e.g. ``admin`` for global kill switches)."""
        return scope in self.scopes.split()


@dataclass(slots=True)
class MessageRow:
    """One message, as stored (the API renders it; ``events`` only filled on request)."""

    id: str
    account_id: str
    to_number: str
    sender: str | None
    type: str
    lane: int
    status: str
    error_code: str | None
    error_detail: str | None
    body: str | None
    segments: int
    encoding: str
    price_milli: int
    country: str | None
    carrier: str | None
    region: str | None
    connector: str | None
    provider_message_id: str | None
    reference: str | None
    callback_url: str | None
    template_id: str | None
    sandbox: bool
    schedule_at: int | None
    validity_seconds: int
    expires_at: int
    attempts: int
    next_attempt_at: int | None
    route_step: int
    step_attempts: int
    lease_until: int | None
    created_at: int
    submitted_at: int | None
    delivered_at: int | None
    updated_at: int
    redacted_body: str | None = None  # OTP messages: the body to keep once a carrier has it
    entity_id: str | None = None  # India DLT: the principal entity id carriers require
    campaign_id: str | None = None  # the bulk campaign that created it, if any
    lease_owner: str | None = None  # the dispatcher holding its claim (store.sql fencing)
    claimed_at: int | None = None  # its first claim (the ``sending`` event; migration 0015)
    events: list[MessageEvent] | None = field(default=None)


MESSAGE_COLUMNS = tuple(f for f in MessageRow.__dataclass_fields__ if f != "events")


# The fleet's register of dispatchers (``Store.register_dispatcher``): each heartbeats this
# often, and one silent for DEAD_AFTER_MS is dead, its claims returned to the queue.
HEARTBEAT_EVERY_S = 2.0
DEAD_AFTER_MS = 10_000


# Moves whose event row is implied by the message's own columns when it carries no detail:
# ``sent`` at ``submitted_at`` and ``delivered`` at ``delivered_at`` (see ``history``).
IMPLIED = frozenset({"sent", "delivered"})


def history(message: MessageRow, stored: Sequence[MessageEvent]) -> list[MessageEvent]:
    """A message's whole event history: the stored rows, with the events its columns imply.

    The acceptance, the first claim (``claimed_at``), a plain ``sent`` and a plain
    ``delivered`` are not stored a second time as rows (each would be an insert, with its
    index, on the hot path). The first ``sending`` goes after any stored ``scheduled`` or
    ``queued`` (a schedule reached) and before the stored attempts; ``sent`` after the
    attempts and before anything later; ``delivered`` is last.
    """
    events = [first_event(message)]
    have = {e.status for e in stored}
    events += [e for e in stored if e.status in ("scheduled", "queued")]
    if message.claimed_at is not None:  # the first claim (a stored row if before 0015)
        events.append(MessageEvent("sending", message.claimed_at, None))
    events += [e for e in stored if e.status == "sending"]  # retries and waits, after it
    late = [e for e in stored if e.status not in ("scheduled", "queued", "sending")]
    if message.submitted_at is not None and "sent" not in have:
        events.append(MessageEvent("sent", message.submitted_at, None))
    events += late
    if message.status == "delivered" and "delivered" not in have:
        events.append(MessageEvent("delivered", message.delivered_at or message.updated_at, None))
    return events


def first_event(message: MessageRow) -> MessageEvent:
    """The acceptance event, implied by the row itself rather than stored a second time.

    Every message starts ``scheduled`` (when it has a schedule) or ``queued`` at ``created_at``;
    storing that as a row too would double the accept path's inserts. Later events are stored.
    """
    status = "scheduled" if message.schedule_at is not None else "queued"
    return MessageEvent(status, message.created_at, "accepted")


@dataclass(slots=True, frozen=True)
class MessageEvent:
    """One entry of a message's append-only status history."""

    status: str
    at: int
    detail: str | None


@dataclass(slots=True, frozen=True)
class StatusChange:
    """A requested lifecycle move, applied only if ``can_transition`` allows it."""

    message_id: str
    status: str
    error_code: str | None = None
    detail: str | None = None
    at: int | None = None  # when it happened (a carrier's done date), default now
    fields: dict[str, Any] = field(default_factory=dict)  # other columns to set with it
    refund: bool = False  # give the message's credits back (never-sent segments)
    provider_part: str | None = None
    # The dispatcher making the move: a message it claimed moves only while it still holds the
    # claim (fencing: a claim rescued from it and taken by another dispatcher stays theirs).
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """A carrier's acceptance of a message: its connector, each part's id, how many parts."""

    message_id: str
    connector: str
    provider_ids: Sequence[str]
    parts: int | None = None
    owner: str | None = None  # the claiming dispatcher (fencing, as StatusChange.owner)
    at: int | None = None  # when the carrier accepted it (ms); None: when this is written


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """One webhook attempt's outcome: delivered, retry at ``next_attempt_at``, or failed."""

    event_id: int
    delivered: bool
    next_attempt_at: int | None
    error: str | None


@dataclass(slots=True, frozen=True)
class WebhookEvent:
    """One pending webhook delivery from the outbox."""

    id: int
    event_id: str
    account_id: str
    message_id: str
    url: str
    payload: str
    attempts: int
    created_at: int


@dataclass(slots=True, frozen=True)
class MessageFilter:
    """Filters of ``GET /v1/messages``."""

    status: str | None = None
    to_number: str | None = None
    reference: str | None = None
    since: int | None = None
    until: int | None = None


@dataclass(slots=True, frozen=True)
class IdempotencyRecord:
    """A stored first response for an ``Idempotency-Key``."""

    request_hash: str
    status_code: int
    response: str


@dataclass(slots=True)
class AcceptOutcome:
    """What an accept did: the messages written and the indexes refused for lack of credit."""

    accepted: list[MessageRow]
    no_credit: list[int]
    balance_milli: int
    replay: IdempotencyRecord | None = None
    response: IdempotencyRecord | None = None


@dataclass(slots=True)
class OtpVerification:
    """One OTP verification as stored: the code only as ``HMAC(server secret, id + code)``."""

    id: str
    account_id: str
    to_number: str
    code_hash: str
    status: str  # pending | approved | expired | failed
    attempts_left: int
    resends: int
    resend_after: int | None  # None once no resend is left
    expires_at: int
    message_id: str | None
    code_length: int
    ttl_seconds: int
    template: str
    template_id: str | None
    sender: str | None
    created_at: int
    updated_at: int
    approved_at: int | None


OTP_COLUMNS = tuple(OtpVerification.__dataclass_fields__)


@dataclass(slots=True, frozen=True)
class OtpCheck:
    """What one check did: ``outcome`` is approved, wrong, failed (last try), expired or closed."""

    verification: OtpVerification
    outcome: str


# Builds the (status, body) to store for an Idempotency-Key from the outcome, inside the same
# transaction as the messages, so a replay returns exactly what the first call returned.
ResponseRenderer = Callable[[AcceptOutcome], tuple[int, str] | None]


class AccountStore(Protocol):
    """Accounts and their API keys."""

    async def create_account(self, **fields: Any) -> Account:
        """Create an account; unspecified fields take the schema's defaults."""

    async def get_account(self, account_id: str) -> Account | None:
        """An account by id."""

    async def update_account(self, account_id: str, **fields: Any) -> Account | None:
        """Change account settings; returns the new state."""

    async def accounts_below(self, balance_milli: int, limit: int = 100) -> list[Account]:
        """Accounts whose balance is under ``balance_milli``, lowest first."""

    async def list_accounts(self, limit: int = 1000) -> list[Account]:
        """Accounts, oldest first (``dakghar accounts list``)."""

    async def find_account_by_name(self, name: str) -> Account | None:
        """The oldest account with this name (used by ``serve --demo``)."""

    async def create_api_key(self, key: ApiKey) -> None:
        """Store a new key (already hashed)."""

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """A key by its visible lookup id."""

    async def revoke_api_key(self, account_id: str, key_id: str) -> bool:
        """Revoke a key; False when it does not exist for the account."""

    async def list_api_keys(self, account_id: str) -> list[ApiKey]:
        """An account's keys (hashes only)."""


class MessageStore(Protocol):
    """Messages as the API sees them: accept (with credits and idempotency), read, cancel."""

    async def get_idempotency(self, account_id: str, key: str) -> IdempotencyRecord | None:
        """The stored first response for an Idempotency-Key, if still within its TTL."""

    async def accept_messages(
        self,
        account_id: str,
        messages: Sequence[MessageRow],
        *,
        charge: bool,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        render: ResponseRenderer | None = None,
    ) -> AcceptOutcome:
        """Durably write new messages with their first event, debiting credits atomically.

        Messages are taken in order while the balance covers them (when ``charge``); the rest
        are reported in ``no_credit``. With an idempotency key, an earlier response for the same
        key is returned as ``replay`` and nothing is written.
        """

    async def get_message(
        self, account_id: str, message_id: str, *, with_events: bool = False
    ) -> MessageRow | None:
        """One message of the account."""

    async def list_messages(
        self, account_id: str, flt: MessageFilter, *, limit: int, after_id: str | None
    ) -> list[MessageRow]:
        """Messages newest first, strictly older than ``after_id`` when given."""

    async def cancel_message(self, account_id: str, message_id: str) -> MessageRow:
        """Cancel a scheduled or queued message, refunding its credits."""

    async def transition(
        self,
        message_id: str,
        status: str,
        *,
        detail: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> MessageRow | None:
        """Move a message to ``status`` if the lifecycle allows it; None when it does not."""


class QueueStore(Protocol):
    """The delivery pipeline's queue: claims with owners, results, receipts, the sweep."""

    async def apply(self, changes: Sequence[StatusChange]) -> list[MessageRow | None]:
        """Apply lifecycle moves atomically, each with its event and webhook outbox row."""

    async def claim(
        self,
        lane: int,
        accounts: Sequence[str],
        per_account: int,
        *,
        lease_ms: int,
        owner: str | None = None,
        sandbox_only: bool = False,
        or_expired: bool = False,
    ) -> tuple[list[MessageRow], dict[str, int | None]]:
        """Claim due queued messages of a lane, fairly across ``accounts``, for dispatcher
        ``owner`` (rows another dispatcher is claiming at the same moment are skipped); with
        ``sandbox_only``, sandbox messages alone (a dispatcher that cannot send live traffic),
        and with ``or_expired`` also live ones past their validity (for it to expire them)."""

    async def release(self, message_ids: Sequence[str], *, owner: str | None = None) -> None:
        """Return claimed messages that were never tried to the queue (a claim undone); with
        ``owner``, only those that dispatcher still holds."""

    async def register_dispatcher(self, owner: str, host: str, pid: int) -> None:
        """Enter a dispatcher in the fleet's register; it must then :meth:`heartbeat`."""

    async def heartbeat(self, owner: str) -> int:
        """Say the dispatcher is alive: how many dispatchers the register counts alive (itself
        among them), or 0 when the fleet declared it dead (it must stop sending and register
        afresh)."""

    async def unregister_dispatcher(self, owner: str) -> None:
        """Leave the register at a clean stop."""

    async def waiting_accounts(self) -> list[tuple[int, str, int]]:
        """(lane, account, earliest due) for every account with queued messages."""

    async def mark_sent(
        self,
        message_id: str,
        connector: str,
        provider_ids: Sequence[str],
        *,
        parts: int | None = None,
    ) -> MessageRow | None:
        """Record a carrier's acceptance (and apply any report that arrived before it).

        ``parts``: how many SMS the connector sent; more than the message's segments bills the
        difference at the message's per-segment price, so billing always matches the wire.
        """

    async def mark_sent_many(self, sent: Sequence[Sent]) -> list[MessageRow | None]:
        """:meth:`mark_sent` for many messages at once (one transaction); a row each."""

    async def report(
        self, connector: str, provider_id: str, change: StatusChange
    ) -> MessageRow | None:
        """Apply a delivery report for one part; kept for later if the part is not known yet."""

    async def report_many(
        self, reports: Sequence[tuple[str, str, StatusChange]]
    ) -> list[MessageRow | None]:
        """:meth:`report` for many (connector, provider id, change) at once; a row each."""

    async def sweep(
        self, *, owner: str | None = None, alone: bool = False
    ) -> dict[str, list[MessageRow]]:
        """Release due scheduled messages, expire overdue ones, requeue orphaned claims.

        An orphan is a claim whose dispatcher stopped heartbeating (or left the register); a
        live dispatcher's claim is never taken. ``alone``: the sweeping dispatcher ``owner``
        knows no other can run (the embedded store's lock), so every other claim is an orphan.
        """


class OutboxStore(Protocol):
    """The webhook outbox, written with each status change and drained by the sender."""

    async def claim_webhooks(self, limit: int, *, lease_ms: int) -> list[WebhookEvent]:
        """Due webhook events, the oldest pending one per message."""

    async def webhook_result(
        self, event_id: int, *, delivered: bool, next_attempt_at: int | None, error: str | None
    ) -> None:
        """Record a webhook attempt: delivered, retry at ``next_attempt_at``, or failed (None)."""

    async def webhook_results(self, results: Sequence[WebhookResult]) -> None:
        """Record many webhook attempts at once."""

    def hand_off_webhooks(
        self,
        take: Callable[[list[WebhookEvent]], None] | None,
        room: Callable[[], int] = lambda: 0,
        *,
        lease_ms: int = 60_000,
    ) -> None:
        """Give the events this process's status changes write to the outbox straight to
        ``take`` (this process's sender), leased to it for ``lease_ms`` from their insert, at
        most ``room()`` per write, and only a message's first pending one (its events still
        go out in order, one at a time). They need no claim; if they are never sent (the
        process dies), their lease runs out and :meth:`claim_webhooks` returns them to any
        sender. ``take`` is called on the event loop after the commit. None stops it."""


class SwitchStore(Protocol):
    """Kill switches, shared by every process."""

    async def switches(self) -> dict[tuple[str, str], bool]:
        """Kill switches: (scope, name) → paused, for scopes ``global`` and ``connector``."""

    async def set_switch(self, scope: str, name: str, paused: bool) -> None:
        """Pause or resume sending globally (scope ``global``, name ``*``) or per connector."""


class StatsStore(Protocol):
    """Delivery analytics (hourly rollups) and the queue's gauges."""

    async def delivery_stats(
        self, account_id: str | None, group_by: str, since: int, until: int
    ) -> list[StatsRow]:
        """Delivery analytics of one account over [since, until), grouped by ``group_by``
        (carrier, region, connector or type), from the hourly rollups (``store.rollups``)."""

    async def queue_stats(self) -> dict[str, Any]:
        """Counts per status and lane, and the age of the oldest queued message per lane."""


class OtpStore(Protocol):
    """OTP verifications (codes stored only as HMACs)."""

    async def create_otp(self, otp: OtpVerification) -> int:
        """Store a new verification; earlier pending ones for the same number expire (count)."""

    async def get_otp(self, account_id: str, otp_id: str) -> OtpVerification | None:
        """One verification of the account."""

    async def check_otp(
        self,
        account_id: str,
        *,
        otp_id: str | None,
        to_number: str | None,
        matches: Callable[[OtpVerification], bool],
        now: int,
    ) -> OtpCheck | None:
        """Try a code atomically against a verification (by id, or the newest for a number).

        ``matches`` compares the presented code with the stored hash; a wrong code takes one
        attempt, the last one fails the verification. None when there is no such verification.
        """

    async def resend_otp(
        self,
        account_id: str,
        otp_id: str,
        *,
        resends: int,
        code_hash: str,
        message_id: str,
        resend_after: int | None,
        expires_at: int,
        now: int,
    ) -> OtpVerification | None:
        """Swap in a new code if the verification is still pending, due and at ``resends``.

        None when another resend won the race or the verification is no longer open.
        """

    async def delete_otp(self, account_id: str, otp_id: str) -> None:
        """Forget a verification whose message could not be accepted."""

    async def expire_otps(self, now: int, limit: int = 5000) -> int:
        """Mark pending verifications past their expiry ``expired``; how many were."""


class RetentionStore(Protocol):
    """The retention purge of message bodies."""

    async def purge_bodies(self, now: int, limit: int = 1000) -> int:
        """Null the bodies of final messages older than their account's ``retention_days`` at
        ``now``, at most ``limit`` rows per write; how many were purged (API.md: then null)."""


class Store(
    AccountStore,
    MessageStore,
    QueueStore,
    OutboxStore,
    SwitchStore,
    StatsStore,
    OtpStore,
    RetentionStore,
    ComplianceStore,
    CampaignStore,
    Protocol,
):
    """Persistence as the rest of Dakghar sees it: every area's interface, and the lifecycle
    (campaigns and compliance are defined in ``store.campaigns`` and ``store.compliance``).

    Code that needs one area may take that narrow protocol instead (``QueueStore`` for the
    dispatcher's writes, ``ComplianceStore`` for the policy, ...). Every backend implements
    all of them, and ``tests/store`` runs the same contract against each.
    """

    async def open(self) -> None:
        """Connect and migrate the schema to the newest version."""

    async def close(self) -> None:
        """Flush pending writes and release connections."""

    def write_stats(self) -> dict[str, float]:
        """Totals of the store's writes in this process (for status and benchmarks)."""

    async def ping(self) -> bool:
        """True when the store answers (``/readyz``)."""
