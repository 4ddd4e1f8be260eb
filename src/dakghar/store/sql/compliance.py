"""The compliance tables in portable SQL: senders, DLT templates, suppressions, opt-out owners.

A mixin of the relational stores (:class:`ComplianceStore` of ``store/compliance.py``): writes
are one group-commit operation each, reads run on a reader connection; both are functions of a
:class:`dakghar.store.sql.Conn`, so the same statements serve SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from dakghar.store.base import now_ms
from dakghar.store.compliance import Rules, Sender, Template
from dakghar.store.sql import Conn

T = TypeVar("T")


def compliance_rules(c: Conn, account_id: str) -> Rules:
    """Every compliance row of ``account_id``."""
    senders = [
        Sender(header, stype, entity_id)
        for header, stype, entity_id in c.execute(
            "SELECT header, type, entity_id FROM senders WHERE account_id = ? "
            "ORDER BY header, type",
            (account_id,),
        )
    ]
    templates = [
        Template(tid, header, category, text)
        for tid, header, category, text in c.execute(
            "SELECT id, header, category, text FROM dlt_templates WHERE account_id = ? ORDER BY id",
            (account_id,),
        )
    ]
    suppressed = frozenset(
        r[0]
        for r in c.execute("SELECT number FROM suppressions WHERE account_id = ?", (account_id,))
    )
    return Rules(senders, templates, suppressed)


def opt_out_owners(c: Conn, header: str, number: str) -> list[str]:
    """Accounts a reply belongs to: those that registered ``header``, else that used it."""
    upper = header.upper()
    registered = [
        r[0]
        for r in c.execute(
            "SELECT DISTINCT account_id FROM senders WHERE header = ? ORDER BY account_id",
            (upper,),
        )
    ]
    if registered:
        return registered
    owners: list[str] = []
    for (account_id,) in c.execute("SELECT id FROM accounts ORDER BY id").fetchall():
        used = c.execute(  # ix_messages_account_to: one index range per account
            "SELECT 1 FROM messages WHERE account_id = ? AND to_number = ? AND upper(sender) = ? "
            "LIMIT 1",
            (account_id, number, upper),
        ).fetchone()
        if used:
            owners.append(account_id)
    return owners


class ComplianceStoreMixin:
    """Compliance reads and writes; needs ``_write`` and ``_read`` from the store."""

    async def _write(self, op: Callable[[Conn], T], *, express: bool = False) -> T:
        raise NotImplementedError

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def compliance_rules(self, account_id: str) -> Rules:
        """Every sender, template (by id) and suppressed number of ``account_id``."""
        return await self._read(lambda c: compliance_rules(c, account_id))

    async def add_sender(self, account_id: str, sender: Sender) -> None:
        """Register a header for a type (upper-cased), or update the entity id it has."""
        params = (account_id, sender.header.upper(), sender.type, sender.entity_id, now_ms())
        await self._write(
            lambda c: c.execute(
                "INSERT INTO senders (account_id, header, type, entity_id, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, header, type) "
                "DO UPDATE SET entity_id = excluded.entity_id",
                params,
            )
        )

    async def add_templates(self, account_id: str, templates: Sequence[Template]) -> int:
        """Register templates, replacing any with the same id; how many were written."""
        now = now_ms()
        rows = [(account_id, t.id, t.header.upper(), t.category, t.text, now) for t in templates]
        if rows:
            await self._write(
                lambda c: c.executemany(
                    "INSERT INTO dlt_templates (account_id, id, header, category, text, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, id) DO UPDATE "
                    "SET header = excluded.header, category = excluded.category, "
                    "text = excluded.text",
                    rows,
                )
            )
        return len(rows)

    async def add_suppression(self, account_id: str, number: str, reason: str) -> bool:
        """Suppress ``number`` for the account; False when it already was (idempotent)."""
        params = (account_id, number, reason, now_ms())
        added = await self._write(
            lambda c: (
                c.execute(
                    "INSERT INTO suppressions (account_id, number, reason, created_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (account_id, number) DO NOTHING",
                    params,
                ).rowcount
            )
        )
        return added == 1

    async def opt_out_owners(self, header: str, number: str) -> list[str]:
        """Accounts a reply to ``header`` from ``number`` belongs to, sorted by id."""
        return await self._read(lambda c: opt_out_owners(c, header, number))
