"""Hourly delivery analytics per account, carrier, region, connector and type

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_hourly",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("region", sa.String(length=40), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("submitted", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("delivery_ms", sa.BigInteger(), nullable=False),
        *(sa.Column(f"d{i}", sa.Integer(), nullable=False) for i in range(10)),
        sa.PrimaryKeyConstraint("account_id", "hour", "carrier", "region", "connector", "type"),
    )


def downgrade() -> None:
    op.drop_table("stats_hourly")
