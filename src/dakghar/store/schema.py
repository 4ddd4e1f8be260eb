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
    Column("created_at", BigInteger, nullable=False),
    Column("submitted_at", BigInteger, nullable=True),
    Column("delivered_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_messages_account_id", messages.c.account_id, messages.c.id)
Index("ix_messages_account_status", messages.c.account_id, messages.c.status, messages.c.id)
Index("ix_messages_account_to", messages.c.account_id, messages.c.to_number, messages.c.id)
# Partial indexes: most messages carry no reference, and a provider id only once sent, so these
# cost nothing on the accept path; the queue index holds only messages still waiting.
_has_reference = messages.c.reference.isnot(None)
_has_provider_id = messages.c.provider_message_id.isnot(None)
_waiting = messages.c.status.in_(["scheduled", "queued"])
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
    messages.c.next_attempt_at,
    sqlite_where=_waiting,
    postgresql_where=_waiting,
)
Index(
    "ix_messages_provider_id",
    messages.c.provider_message_id,
    sqlite_where=_has_provider_id,
    postgresql_where=_has_provider_id,
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(40), ForeignKey("messages.id"), nullable=False),
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
