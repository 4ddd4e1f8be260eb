"""Event and part rows no longer carry a foreign key to their message

Every message writes a ``message_events`` row when first claimed and a ``message_parts`` row
per part when the carrier accepts it. On PostgreSQL each such insert ran the foreign key's
check, ``SELECT ... FROM messages ... FOR KEY SHARE``: a row lock on the message, so a WAL
record and a dirtied heap page per insert, on the very rows the same transaction had just
updated. Measured with ``pg_stat_statements`` during ``bench/scaleout.py`` (8,000 messages,
one ``serve`` on PostgreSQL): those two inserts took 1,957 and 1,994 ms of execution in two
runs with the keys, 302 and 252 ms without; the server's CPU per 1,000 messages went from
0.77 / 0.74 s to 0.64 / 0.58 s.

Nothing depends on the keys. Both rows are written only beside their message, in the
operation that moves it (``store.sql.pipeline_ops``), and messages are never deleted (the
retention job clears bodies). SQLite checked them cheaply, but the schema is one for both
backends, so there the two tables are copied without them (SQLite cannot drop a constraint
in place).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# (table, foreign key name on PostgreSQL, its index: name and columns)
_TABLES = (
    ("message_events", "message_events_message_id_fkey", "ix_message_events_message",
     ["message_id", "id"]),
    ("message_parts", "message_parts_message_id_fkey", "ix_message_parts_message",
     ["message_id"]),
)  # fmt: skip


def _columns(table: str) -> list[sa.schema.SchemaItem]:
    if table == "message_events":
        return [
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("message_id", sa.String(length=40), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("at", sa.BigInteger(), nullable=False),
            sa.Column("detail", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        ]
    return [
        sa.Column("connector", sa.String(length=60), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("connector", "provider_message_id"),
    ]


def _copy_sqlite(table: str, index: str, indexed: list[str], *, with_key: bool) -> None:
    """Copy ``table`` with or without its foreign key to ``messages`` (rows, ids and index
    kept)."""
    key = [sa.ForeignKeyConstraint(["message_id"], ["messages.id"])] if with_key else []
    op.create_table(f"{table}_new", *_columns(table), *key)
    names = ", ".join(c.name for c in _columns(table) if isinstance(c, sa.Column))
    op.execute(f"INSERT INTO {table}_new ({names}) SELECT {names} FROM {table}")
    op.drop_index(index, table_name=table)
    op.drop_table(table)
    op.rename_table(f"{table}_new", table)
    op.create_index(index, table, indexed, unique=False)


def _set_keys(with_key: bool) -> None:
    sqlite = op.get_bind().dialect.name != "postgresql"
    for table, key, index, indexed in _TABLES:
        if sqlite:
            _copy_sqlite(table, index, indexed, with_key=with_key)
        elif with_key:
            op.create_foreign_key(key, table, "messages", ["message_id"], ["id"])
        else:
            op.drop_constraint(key, table, type_="foreignkey")


def upgrade() -> None:
    _set_keys(with_key=False)


def downgrade() -> None:
    _set_keys(with_key=True)
