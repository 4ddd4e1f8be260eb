"""Webhook secret rotation: the previous secret keeps signing for 24 h

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("previous_webhook_secret", sa.String(100), nullable=True))
    op.add_column(
        "accounts", sa.Column("previous_secret_expires_at", sa.BigInteger(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_webhook_secret")
