"""The pipeline half of the SQLite store: claims, results, reports, sweeps, outbox, switches.

A mixin of :class:`SqliteStore`; every write is one group-commit operation running the
functions of ``pipeline_ops`` on the writer's connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from dakghar.core.message import Status
from dakghar.store.base import MessageRow, StatusChange, WebhookEvent, now_ms
from dakghar.store.rollups import BUCKETS, GROUPS, StatsRow, hour_of, report
from dakghar.store.sqlite import pipeline_ops as ops

T = TypeVar("T")


class PipelineStoreMixin:
    """Pipeline operations; needs ``_write`` and ``_read`` from the store."""

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def apply(self, changes: Sequence[StatusChange]) -> list[MessageRow | None]:
        """Apply lifecycle moves atomically."""

        def op(c: sqlite3.Connection) -> list[MessageRow | None]:
            now = now_ms()
            return [ops.apply_change(c, ch, now) for ch in changes]

        return await self._write(op)

    async def claim(
        self, lane: int, accounts: Sequence[str], per_account: int, *, lease_ms: int
    ) -> tuple[list[MessageRow], dict[str, int | None]]:
        """Claim due queued messages fairly across accounts."""

        def op(c: sqlite3.Connection) -> tuple[list[MessageRow], dict[str, int | None]]:
            now = now_ms()
            return ops.claim(c, lane, accounts, per_account, now, now + lease_ms)

        return await self._write(op)

    async def waiting_accounts(self) -> list[tuple[int, str, int]]:
        """Accounts with queued messages per lane."""
        return await self._read(ops.waiting_accounts)

    async def mark_sent(
        self,
        message_id: str,
        connector: str,
        provider_ids: Sequence[str],
        *,
        parts: int | None = None,
    ) -> MessageRow | None:
        """Carrier accepted every part: ``sent``, then any early reports."""

        def op(c: sqlite3.Connection) -> MessageRow | None:
            now = now_ms()
            fields: dict[str, object] = {
                "connector": connector,
                "provider_message_id": provider_ids[0] if provider_ids else None,
            }
            # One part never exceeds the segments counted at accept (at least one): no read.
            detail = ops.bill_parts(c, message_id, parts, fields) if parts and parts > 1 else None
            msg = ops.apply_change(
                c, StatusChange(message_id, Status.SENT.value, detail=detail, fields=fields), now
            )
            for early in ops.record_parts(c, message_id, connector, provider_ids, now):
                assert early.provider_part is not None
                msg = ops.report(c, connector, early.provider_part, early, now) or msg
            return msg

        return await self._write(op)

    async def report(
        self, connector: str, provider_id: str, change: StatusChange
    ) -> MessageRow | None:
        """A delivery report for one part."""
        return await self._write(lambda c: ops.report(c, connector, provider_id, change, now_ms()))

    async def sweep(self, *, reclaim_all: bool = False) -> dict[str, list[MessageRow]]:
        """Time-driven moves."""
        return await self._write(lambda c: ops.sweep(c, now_ms(), reclaim_all=reclaim_all))

    async def claim_webhooks(self, limit: int, *, lease_ms: int) -> list[WebhookEvent]:
        """Due webhook events."""
        rows = await self._write(lambda c: ops.claim_webhooks(c, now_ms(), limit, lease_ms))
        return [WebhookEvent(*r) for r in rows]

    async def webhook_result(
        self, event_id: int, *, delivered: bool, next_attempt_at: int | None, error: str | None
    ) -> None:
        """Record one webhook attempt."""
        if delivered:
            status, due = "delivered", now_ms()
        elif next_attempt_at is None:
            status, due = "failed", now_ms()
        else:
            status, due = "pending", next_attempt_at
        await self._write(
            lambda c: c.execute(
                "UPDATE webhook_events SET status = ?, attempts = attempts + 1, "
                "next_attempt_at = ?, last_error = ? WHERE id = ?",
                (status, due, error, event_id),
            )
        )

    async def switches(self) -> dict[tuple[str, str], bool]:
        """All kill switches, paused accounts included as scope ``account``."""

        def fn(c: sqlite3.Connection) -> list[tuple[str, str, bool]]:
            rows = c.execute("SELECT scope, name, paused FROM switches").fetchall()
            rows += c.execute(
                "SELECT 'account', id, 1 FROM accounts WHERE sending_paused = 1"
            ).fetchall()
            return rows

        return {(r[0], r[1]): bool(r[2]) for r in await self._read(fn)}

    async def set_switch(self, scope: str, name: str, paused: bool) -> None:
        """Set one kill switch."""
        if scope not in ("global", "connector"):
            raise ValueError("scope must be 'global' or 'connector'")
        await self._write(
            lambda c: c.execute(
                "INSERT INTO switches (scope, name, paused, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope, name) DO UPDATE SET paused = excluded.paused, "
                "updated_at = excluded.updated_at",
                (scope, name, paused, now_ms()),
            )
        )

    async def delivery_stats(
        self, account_id: str | None, group_by: str, since: int, until: int
    ) -> list[StatsRow]:
        """Delivery analytics from the hourly rollups of the window (hours overlapping it);
        ``account_id`` None sums every account (for operators' alerts)."""
        if group_by not in GROUPS:
            raise ValueError(f"group_by must be one of {GROUPS}")
        buckets = ", ".join(f"SUM(d{i})" for i in range(len(BUCKETS)))
        scope = "account_id = ? AND " if account_id is not None else ""
        sql = (
            f"SELECT {group_by}, SUM(submitted), SUM(delivered), SUM(failed), {buckets} "
            f"FROM stats_hourly WHERE {scope}hour >= ? AND hour < ? GROUP BY {group_by}"
        )
        args = (*([account_id] if account_id is not None else []), hour_of(since), until)
        rows = await self._read(lambda c: c.execute(sql, args).fetchall())
        return report(rows)

    async def queue_stats(self) -> dict[str, Any]:
        """Counts per status and lane, and the oldest queued message's age per lane."""

        def fn(c: sqlite3.Connection) -> dict[str, Any]:
            now = now_ms()
            counts = {
                f"{r[0]}:{r[1]}": int(r[2])
                for r in c.execute(
                    "SELECT status, lane, COUNT(*) FROM messages "
                    "WHERE status IN ('scheduled', 'queued', 'sending', 'sent') "
                    "GROUP BY status, lane"
                )
            }
            oldest = {
                int(r[0]): (now - int(r[1])) / 1000
                for r in c.execute(
                    f"SELECT lane, MIN(next_attempt_at) FROM messages WHERE {ops.WAITING} "
                    "GROUP BY lane"
                )
                if r[1] is not None
            }
            pending = c.execute(
                "SELECT COUNT(*) FROM webhook_events WHERE status = 'pending'"
            ).fetchone()[0]
            return {"counts": counts, "oldest_queued_seconds": oldest, "webhooks_pending": pending}

        return await self._read(fn)
