"""The database schema, defined once as SQLAlchemy Core tables.

Alembic migrations (``store/migrations``) create and evolve it for SQLite and PostgreSQL alike;
the store implementations query it with Core on cold paths and hand-written SQL on hot paths.
Timestamps are integer milliseconds since the epoch (portable, sortable, cheap to compare);
money is integer milli-credits (no float drift in balances).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("balance_milli", BigInteger, nullable=False, default=0),
    Column("price_milli_per_segment", Integer, nullable=False, default=1000),
    Column("default_region", String(2), nullable=False, default="IN"),
    Column("default_sender", String(20), nullable=True),
    Column("allowed_countries", Text, nullable=True),  # comma-separated ISO codes; NULL = all
    Column("segment_limit", Integer, nullable=False, default=10),
    Column("webhook_secret", String(100), nullable=False),
    Column("callback_url", Text, nullable=True),
    Column("rate_per_second", Integer, nullable=False, default=200),
    Column("rate_burst", Integer, nullable=False, default=400),
    Column("smart_encoding", Boolean, nullable=False, default=False),
    Column("dlt_enforced", Boolean, nullable=False, default=False),
    Column("sending_paused", Boolean, nullable=False, default=False),
    Column("retention_days", Integer, nullable=False, default=30),
    Column("created_at", BigInteger, nullable=False),
    # API.md "Delivery webhooks": final | sent | all (core.message.WebhookEvents)
    Column("webhook_events", String(8), nullable=False, default="final", server_default="final"),
    Column("inbound_url", Text, nullable=True),  # where inbound messages are POSTed
    # After a rotation the old secret signs too, until then (API.md "Webhook secret").
    Column("previous_webhook_secret", String(100), nullable=True),
    Column("previous_secret_expires_at", BigInteger, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),  # the visible lookup id inside the key
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("mode", String(8), nullable=False),  # test | live
    Column("key_hash", String(64), nullable=False),  # hex HMAC-SHA256(server secret, key)
    Column("name", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("scopes", String(200), nullable=False, default=""),  # space-separated, e.g. "admin"
)
Index("ix_api_keys_account", api_keys.c.account_id)

messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("to_number", String(20), nullable=False),
    Column("sender", String(20), nullable=True),
    Column("type", String(16), nullable=False),
    Column("lane", Integer, nullable=False),  # 0 otp, 1 transactional, 2 promotional
    Column("status", String(16), nullable=False),
    Column("error_code", String(40), nullable=True),
    Column("error_detail", Text, nullable=True),
    Column("body", Text, nullable=True),  # NULL once the retention period purges it
    Column("segments", Integer, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("price_milli", BigInteger, nullable=False),
    Column("country", String(2), nullable=True),
    Column("carrier", String(60), nullable=True),
    Column("region", String(60), nullable=True),
    Column("connector", String(60), nullable=True),
    Column("provider_message_id", String(100), nullable=True),
    Column("reference", String(128), nullable=True),
    Column("callback_url", Text, nullable=True),
    Column("template_id", String(40), nullable=True),
    Column("sandbox", Boolean, nullable=False),
    Column("schedule_at", BigInteger, nullable=True),
    Column("validity_seconds", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=True),  # when the pipeline may (re)try it
    Column("route_step", Integer, nullable=False, default=0),  # index into the route's connectors
    Column("step_attempts", Integer, nullable=False, default=0),  # attempts on that connector
    Column("lease_until", BigInteger, nullable=True),  # a claimed message returns after this
    Column("created_at", BigInteger, nullable=False),
    Column("submitted_at", BigInteger, nullable=True),
    Column("delivered_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    # An OTP message's body with the code masked: replaces ``body`` once a carrier has the
    # message (or it ends unsent), so the code is kept in clear only while it is outgoing.
    Column("redacted_body", Text, nullable=True),
    Column("entity_id", String(40), nullable=True),  # India DLT principal entity id
    Column("campaign_id", String(40), nullable=True),  # the bulk campaign that created it
    # The dispatcher holding the claim (``dispatchers.id``): every later write of a claimed
    # message is fenced on it, and a claim is rescued only once its owner stopped heartbeating.
    Column("lease_owner", String(40), nullable=True),
    # When its first claim took it: the ``sending`` event of its history (migration 0015).
    Column("claimed_at", BigInteger, nullable=True),
)
Index("ix_messages_account_id", messages.c.account_id, messages.c.id)
Index("ix_messages_account_status", messages.c.account_id, messages.c.status, messages.c.id)
Index("ix_messages_account_to", messages.c.account_id, messages.c.to_number, messages.c.id)
# Partial indexes: most messages carry no reference, so that index costs nothing on the accept
# path; the queue indexes hold only the messages in that state, so they stay small however long
# the history grows.
_has_reference = messages.c.reference.isnot(None)
# The queue: every message a dispatcher may claim. A retry keeps its ``sending`` status (status
# never moves backwards) but drops its lease, so it waits here beside new ``queued`` messages.
_queued = messages.c.status.in_(("queued", "sending")) & messages.c.lease_until.is_(None)
_scheduled = messages.c.status == "scheduled"
_sending = messages.c.status == "sending"
_sent = messages.c.status == "sent"
Index(
    "ix_messages_account_reference",
    messages.c.account_id,
    messages.c.reference,
    sqlite_where=_has_reference,
    postgresql_where=_has_reference,
)
Index(
    "ix_messages_queue",
    messages.c.lane,
    messages.c.account_id,
    messages.c.next_attempt_at,
    sqlite_where=_queued,
    postgresql_where=_queued,
)
# The sandbox part of the queue (migration 0012): a dispatcher none of whose carriers can take
# live traffic (no bind, or its bind slots held by the rest of the fleet) still claims sandbox
# messages, and this keeps that claim an index probe however much live traffic is waiting.
_sandbox_queued = _queued & messages.c.sandbox.is_(True)
Index(
    "ix_messages_sandbox_queue",
    messages.c.lane,
    messages.c.account_id,
    messages.c.next_attempt_at,
    sqlite_where=_sandbox_queued,
    postgresql_where=_sandbox_queued,
)
_in_campaign = messages.c.campaign_id.isnot(None)
Index(
    "ix_messages_campaign",
    messages.c.campaign_id,
    messages.c.status,
    sqlite_where=_in_campaign,
    postgresql_where=_in_campaign,
)
Index(
    "ix_messages_scheduled",
    messages.c.schedule_at,
    sqlite_where=_scheduled,
    postgresql_where=_scheduled,
)
Index(
    "ix_messages_leased",
    messages.c.lease_until,
    sqlite_where=_sending,
    postgresql_where=_sending,
)
Index(
    "ix_messages_awaiting_report",
    messages.c.expires_at,
    sqlite_where=_sent,
    postgresql_where=_sent,
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No foreign key: its check locked the message row for every insert (migration 0014).
    Column("message_id", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("detail", Text, nullable=True),
)
Index("ix_message_events_message", message_events.c.message_id, message_events.c.id)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_idempotency_created", idempotency_keys.c.created_at)

# Carrier-side ids of every submitted part: delivery reports are correlated through here.
message_parts = Table(
    "message_parts",
    metadata,
    Column("connector", String(60), primary_key=True),
    Column("provider_message_id", String(100), primary_key=True),
    Column("message_id", String(40), nullable=False),  # no foreign key (migration 0014)
    Column("part", Integer, nullable=False),
    Column("status", String(16), nullable=True),  # final status from its report, once known
)
Index("ix_message_parts_message", message_parts.c.message_id)

# A report that arrived before its submit response (it happens): applied when the id is known.
early_reports = Table(
    "early_reports",
    metadata,
    Column("connector", String(60), primary_key=True),
    Column("provider_message_id", String(100), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("error_code", String(40), nullable=True),
    Column("detail", Text, nullable=True),
    Column("at", BigInteger, nullable=False),
)

# The webhook outbox: written in the same transaction as the status change it announces.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False, unique=True),
    Column("account_id", String(40), nullable=False),
    Column("message_id", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(12), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
_pending = webhook_events.c.status == "pending"
Index(
    "ix_webhook_events_due",
    webhook_events.c.next_attempt_at,
    sqlite_where=_pending,
    postgresql_where=_pending,
)
Index(  # over pending events only (migration 0011: the claim's per-message probe)
    "ix_webhook_events_message",
    webhook_events.c.message_id,
    webhook_events.c.id,
    sqlite_where=_pending,
    postgresql_where=_pending,
)

# Kill switches beyond the per-account flag: scope "global" (name "*") or "connector".
switches = Table(
    "switches",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("name", String(60), primary_key=True),
    Column("paused", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# The dispatchers of the fleet, each heartbeating every couple of seconds. A claim whose owner
# is missing here, or stopped heartbeating, is an orphan the sweep returns to the queue.
dispatchers = Table(
    "dispatchers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
)

# OTP verifications: the code is stored only as HMAC-SHA256(server secret, id + code).
otp_verifications = Table(
    "otp_verifications",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("to_number", String(20), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # pending | approved | expired | failed
    Column("attempts_left", Integer, nullable=False),
    Column("resends", Integer, nullable=False, default=0),
    Column("resend_after", BigInteger, nullable=True),  # NULL once no resend is left
    Column("expires_at", BigInteger, nullable=False),
    Column("message_id", String(40), nullable=True),  # the latest message carrying a code
    Column("code_length", Integer, nullable=False),
    Column("ttl_seconds", Integer, nullable=False),
    Column("template", Text, nullable=False),
    Column("template_id", String(40), nullable=True),
    Column("sender", String(20), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("approved_at", BigInteger, nullable=True),
)
Index(
    "ix_otp_account_to",
    otp_verifications.c.account_id,
    otp_verifications.c.to_number,
    otp_verifications.c.id,
)
_otp_pending = otp_verifications.c.status == "pending"
Index(
    "ix_otp_pending_expiry",
    otp_verifications.c.expires_at,
    sqlite_where=_otp_pending,
    postgresql_where=_otp_pending,
)

# India DLT (``dakghar.compliance``): registered sender headers and content templates per
# account, and the account's own suppression list (opt-outs).
senders = Table(
    "senders",
    metadata,
    Column("account_id", String(40), ForeignKey("accounts.id"), primary_key=True),
    Column("header", String(20), primary_key=True),
    Column("type", String(16), primary_key=True),  # transactional | service | promotional
    Column("entity_id", String(40), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

dlt_templates = Table(
    "dlt_templates",
    metadata,
    Column("account_id", String(40), ForeignKey("accounts.id"), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("header", String(20), nullable=False),
    Column("category", String(40), nullable=False),
    Column("text", Text, nullable=False),  # with {#var#} placeholders
    Column("created_at", BigInteger, nullable=False),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("account_id", String(40), ForeignKey("accounts.id"), primary_key=True),
    Column("number", String(20), primary_key=True),
    Column("reason", String(40), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Bulk campaigns (``dakghar.campaigns``): the messages carry ``campaign_id``; rows refused at
# ingest (invalid, duplicate, DND) are kept for the report.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("name", String(200), nullable=True),
    Column("type", String(16), nullable=False),
    Column("sender", String(20), nullable=True),
    Column("status", String(12), nullable=False),  # scheduled | running | paused | canceled
    Column("rate_per_second", Integer, nullable=True),
    Column("schedule_at", BigInteger, nullable=True),
    Column("total", Integer, nullable=False),
    Column("valid", Integer, nullable=False),
    Column("invalid", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("dnd_filtered", Integer, nullable=False),
    Column("paused_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_campaigns_account", campaigns.c.account_id, campaigns.c.id)

campaign_rejects = Table(
    "campaign_rejects",
    metadata,
    Column("campaign_id", String(40), ForeignKey("campaigns.id"), primary_key=True),
    Column("row_no", Integer, primary_key=True),
    Column("phone", String(64), nullable=False),
    Column("error_code", String(40), nullable=False),
)

# Delivery analytics (``GET /v1/stats``): one row per account, hour and dimension set, kept up to
# date in the same transaction as each status change, so a report reads a few hundred rows
# instead of scanning message history. ``d0``..``d9`` count deliveries by how long they took
# after submission (bucket bounds in ``dakghar.store.rollups.BUCKETS``), for the median.
stats_hourly = Table(
    "stats_hourly",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("hour", BigInteger, primary_key=True),  # ms at the start of the UTC hour
    Column("carrier", String(40), primary_key=True),  # '' when unknown
    Column("region", String(40), primary_key=True),
    Column("connector", String(64), primary_key=True),
    Column("type", String(16), primary_key=True),
    # the writing process's (``store.rollups.shard``), so processes never share a row
    Column("shard", SmallInteger, primary_key=True, server_default="0"),
    Column("submitted", Integer, nullable=False, default=0),
    Column("delivered", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("delivery_ms", BigInteger, nullable=False, default=0),
    *(Column(f"d{i}", Integer, nullable=False, default=0) for i in range(10)),
)
