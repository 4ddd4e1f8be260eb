"""Retries keep their status; accounts choose which status changes are POSTed

A message waiting for a retry now stays ``sending`` (API.md: status never moves backwards), so
the queue is every ``queued`` or ``sending`` message that no dispatcher holds: the queue index
covers both. ``accounts.webhook_events`` is API.md's ``final`` | ``sent`` | ``all``, and
``accounts.inbound_url`` where replies will be POSTed.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OLD = "status = 'queued'"
_NEW = "status IN ('queued', 'sending') AND lease_until IS NULL"


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("webhook_events", sa.String(length=8), nullable=False, server_default="final"),
    )
    op.add_column("accounts", sa.Column("inbound_url", sa.Text(), nullable=True))
    op.drop_index("ix_messages_queue", table_name="messages")
    op.create_index(
        "ix_messages_queue",
        "messages",
        ["lane", "account_id", "next_attempt_at"],
        unique=False,
        sqlite_where=sa.text(_NEW),
        postgresql_where=sa.text(_NEW),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_queue", table_name="messages")
    op.create_index(
        "ix_messages_queue",
        "messages",
        ["lane", "account_id", "next_attempt_at"],
        unique=False,
        sqlite_where=sa.text(_OLD),
        postgresql_where=sa.text(_OLD),
    )
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("webhook_events")
        batch_op.drop_column("inbound_url")
