"""Reading and writing the compliance tables (senders, DLT templates, suppressions).

Writes go through the store's group-commit writer like every other write. Reads used by the
accept step are synchronous (``load_sync``): accepting is synchronous and a snapshot of one
account's rules is a few indexed rows, read at most once per refresh interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from dakghar.compliance.templates import Template
from dakghar.store.base import now_ms
from dakghar.store.sql import Conn
from dakghar.store.sqlite.store import SqliteStore

SENDER_TYPES = ("transactional", "service", "promotional")


@dataclass(frozen=True, slots=True)
class Sender:
    """A registered sender header (DLT "header") of an account."""

    header: str
    type: str
    entity_id: str | None


@dataclass(frozen=True, slots=True)
class Rules:
    """One account's compliance rows, as read together."""

    senders: list[Sender]
    templates: list[Template]
    suppressed: frozenset[str]


def load_sync(conn: Conn, account_id: str) -> Rules:
    """Every compliance row of ``account_id``."""
    senders = [
        Sender(*r)
        for r in conn.execute(
            "SELECT header, type, entity_id FROM senders WHERE account_id = ? ORDER BY header",
            (account_id,),
        )
    ]
    templates = [
        Template(*r)
        for r in conn.execute(
            "SELECT id, header, category, text FROM dlt_templates WHERE account_id = ? ORDER BY id",
            (account_id,),
        )
    ]
    suppressed = frozenset(
        r[0]
        for r in conn.execute("SELECT number FROM suppressions WHERE account_id = ?", (account_id,))
    )
    return Rules(senders, templates, suppressed)


async def load(store: SqliteStore, account_id: str) -> Rules:
    """:func:`load_sync` on a reader thread."""
    return await store._read(lambda c: load_sync(c, account_id))


async def add_sender(store: SqliteStore, account_id: str, sender: Sender) -> None:
    """Register (or update the entity id of) a sender header for a type."""
    if sender.type not in SENDER_TYPES:
        raise ValueError(f"sender type must be one of {', '.join(SENDER_TYPES)}")
    await store._write(
        lambda c: c.execute(
            "INSERT INTO senders (account_id, header, type, entity_id, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, header, type) "
            "DO UPDATE SET entity_id = excluded.entity_id",
            (account_id, sender.header.upper(), sender.type, sender.entity_id, now_ms()),
        )
    )


async def add_templates(store: SqliteStore, account_id: str, templates: list[Template]) -> int:
    """Register templates (replacing any with the same id); how many were written."""
    now = now_ms()
    rows = [(account_id, t.id, t.header.upper(), t.category, t.text, now) for t in templates]
    await store._write(
        lambda c: c.executemany(
            "INSERT INTO dlt_templates (account_id, id, header, category, text, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, id) DO UPDATE SET "
            "header = excluded.header, category = excluded.category, text = excluded.text",
            rows,
        )
    )
    return len(rows)


async def suppress(store: SqliteStore, account_id: str, number: str, reason: str) -> None:
    """Add ``number`` to the account's suppression list (idempotent)."""
    await store._write(
        lambda c: c.execute(
            "INSERT INTO suppressions (account_id, number, reason, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (account_id, number) DO NOTHING",
            (account_id, number, reason, now_ms()),
        )
    )
