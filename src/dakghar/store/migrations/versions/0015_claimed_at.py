"""A message's first claim is a column, not an event row

Every message's first claim wrote a ``message_events`` row (``sending``, no detail): an insert,
with its index, on the hot path of every message, and the only row most messages ever had
there, since acceptance and a plain ``sent`` or ``delivered`` are implied by the message's
own columns already. ``claimed_at`` holds that moment instead, set by the claim's update that
happens anyway, and ``store.base.history`` lists the event from it. Messages claimed before
this keep their stored row and have no ``claimed_at``, so no event is listed twice.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("claimed_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # The events the column implied become rows again, so the history stays whole.
    op.execute(
        "INSERT INTO message_events (message_id, status, at, detail) "
        "SELECT id, 'sending', claimed_at, NULL FROM messages WHERE claimed_at IS NOT NULL"
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
