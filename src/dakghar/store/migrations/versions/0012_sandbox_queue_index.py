"""The sandbox part of the queue has an index of its own

A dispatcher that cannot send live traffic (none of its carriers bound, or the fleet's bind
slots all held by other processes) claims only sandbox messages. Over queued sandbox messages
only, that claim stays an index probe behind any live backlog, and the index costs nothing for
live traffic.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# As SQLAlchemy spells the schema's partial index on each backend (``store.schema``).
_WHERE = "status IN ('queued', 'sending') AND lease_until IS NULL AND sandbox IS {true}"


def upgrade() -> None:
    op.create_index(
        "ix_messages_sandbox_queue",
        "messages",
        ["lane", "account_id", "next_attempt_at"],
        unique=False,
        sqlite_where=sa.text(_WHERE.format(true="1")),
        postgresql_where=sa.text(_WHERE.format(true="true")),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_sandbox_queue", table_name="messages")
