"""OTP verifications, and the masked body of OTP messages

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redacted_body", sa.Text(), nullable=True))

    op.create_table(
        "otp_verifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts_left", sa.Integer(), nullable=False),
        sa.Column("resends", sa.Integer(), nullable=False),
        sa.Column("resend_after", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.Column("code_length", sa.Integer(), nullable=False),
        sa.Column("ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=True),
        sa.Column("sender", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("approved_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("otp_verifications", schema=None) as batch_op:
        batch_op.create_index("ix_otp_account_to", ["account_id", "to_number", "id"], unique=False)
        batch_op.create_index(
            "ix_otp_pending_expiry",
            ["expires_at"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("otp_verifications", schema=None) as batch_op:
        batch_op.drop_index("ix_otp_pending_expiry")
        batch_op.drop_index("ix_otp_account_to")
    op.drop_table("otp_verifications")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("redacted_body")
