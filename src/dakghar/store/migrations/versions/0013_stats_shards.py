"""Each process counts delivery analytics into rows of its own shard

Two dispatchers settling one account's messages at once upserted the same ``stats_hourly``
row, so each transaction waited on the other's row lock until it committed. A ``shard`` column
(the writing process's, ``store.rollups.shard``) in the key gives each process rows of its
own; reports sum over shards as they already summed over hours. Existing rows are shard 0.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

KEY = ["account_id", "hour", "carrier", "region", "connector", "type"]
COUNTS = ["submitted", "delivered", "failed", "delivery_ms", *(f"d{i}" for i in range(10))]


def _copy_sqlite(with_shard: bool) -> None:
    """SQLite cannot change a primary key in place: copy the table (it holds one row per
    account, hour and dimension set, not one per message)."""
    key = [*KEY, "shard"] if with_shard else KEY
    op.create_table(
        "stats_hourly_new",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("region", sa.String(length=40), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        *([sa.Column("shard", sa.SmallInteger(), nullable=False, server_default="0")]
          if with_shard else []),
        sa.Column("submitted", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("delivery_ms", sa.BigInteger(), nullable=False),
        *(sa.Column(f"d{i}", sa.Integer(), nullable=False) for i in range(10)),
        sa.PrimaryKeyConstraint(*key),
    )  # fmt: skip
    columns = ", ".join([*KEY, *COUNTS])
    if with_shard:
        op.execute(f"INSERT INTO stats_hourly_new ({columns}) SELECT {columns} FROM stats_hourly")
    else:
        sums = ", ".join(f"SUM({c})" for c in COUNTS)
        op.execute(
            f"INSERT INTO stats_hourly_new ({columns}) SELECT {', '.join(KEY)}, {sums} "
            f"FROM stats_hourly GROUP BY {', '.join(KEY)}"
        )
    op.drop_table("stats_hourly")
    op.rename_table("stats_hourly_new", "stats_hourly")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _copy_sqlite(with_shard=True)
        return
    op.add_column(
        "stats_hourly", sa.Column("shard", sa.SmallInteger(), nullable=False, server_default="0")
    )
    op.drop_constraint("stats_hourly_pkey", "stats_hourly", type_="primary")
    op.create_primary_key("stats_hourly_pkey", "stats_hourly", [*KEY, "shard"])


def downgrade() -> None:
    """Shards merged back into one row per key."""
    if op.get_bind().dialect.name != "postgresql":
        _copy_sqlite(with_shard=False)
        return
    key = ", ".join(KEY)
    sums = ", ".join(f"SUM({c}) AS {c}" for c in COUNTS)
    op.execute(
        f"CREATE TEMPORARY TABLE stats_merged AS SELECT {key}, {sums} FROM stats_hourly "
        f"GROUP BY {key}"
    )
    op.execute("DELETE FROM stats_hourly")
    op.drop_constraint("stats_hourly_pkey", "stats_hourly", type_="primary")
    op.drop_column("stats_hourly", "shard")
    op.create_primary_key("stats_hourly_pkey", "stats_hourly", KEY)
    columns = ", ".join([*KEY, *COUNTS])
    op.execute(f"INSERT INTO stats_hourly ({columns}) SELECT {columns} FROM stats_merged")
    op.execute("DROP TABLE stats_merged")
