"""The per-message webhook index holds pending events only

The outbox claim probes, for each due event, this index for an older pending event of the
same message. Settled events (nearly all of them) never matter to that probe: over pending
events only, the index stays the size of the outbox's backlog instead of growing with every
event ever sent, and an event that settles adds no entry to it.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_webhook_events_message", table_name="webhook_events")
    pending = sa.text("status = 'pending'")
    op.create_index(
        "ix_webhook_events_message",
        "webhook_events",
        ["message_id", "id"],
        sqlite_where=pending,
        postgresql_where=pending,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_message", table_name="webhook_events")
    op.create_index("ix_webhook_events_message", "webhook_events", ["message_id", "id"])
