"""The campaigns area (:class:`dakghar.store.campaigns.CampaignStore`) in portable SQL.

A mixin of the relational stores: each method is one ``_read`` on a reader connection or one
``_write`` run by the backend's group-commit writer, on a :class:`dakghar.store.sql.Conn`.
Walks over a campaign's messages (releasing staged rows, the report) are keyset walks on the
message id through ``ix_messages_account_id`` (``account_id, id``): a campaign's messages all
belong to its account, and that index gives them in id order, so every chunk starts where the
last ended and costs the same however far the walk has gone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from dakghar.store.base import now_ms
from dakghar.store.campaigns import (
    CAMPAIGN_COLUMNS,
    ENDED,
    PAUSE_SHIFT,
    STAGE_SHIFT,
    CampaignMessage,
    CampaignRow,
    Reject,
)
from dakghar.store.sql import Conn

T = TypeVar("T")

_SELECT = f"SELECT {', '.join(CAMPAIGN_COLUMNS)} FROM campaigns"
_INSERT = (
    f"INSERT INTO campaigns ({', '.join(CAMPAIGN_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in CAMPAIGN_COLUMNS)})"
)
_COUNTS = frozenset(("total", "valid", "invalid", "duplicates", "dnd_filtered"))
_WAITING = "status IN ('scheduled', 'queued')"
# Moves a message's times by ``delta`` (three times the same parameter).
_SHIFT = (
    "UPDATE messages SET next_attempt_at = next_attempt_at + ?, "
    "schedule_at = CASE WHEN schedule_at IS NULL THEN NULL ELSE schedule_at + ? END, "
    "expires_at = expires_at + ? "
)
_REJECTS_PAGE = (
    "SELECT row_no, phone, error_code FROM campaign_rejects WHERE campaign_id = ? "
    "AND row_no > ? ORDER BY row_no LIMIT ?"
)
_MESSAGES_PAGE = (
    "SELECT id, to_number, status, error_code FROM messages "
    "WHERE account_id = (SELECT account_id FROM campaigns WHERE id = ?) "
    "AND campaign_id = ? AND id > ? ORDER BY id LIMIT ?"
)
_STAGED_PAGE = (
    f"SELECT id FROM messages WHERE account_id = ? AND campaign_id = ? AND {_WAITING} "
    "AND id > ? AND next_attempt_at >= ? ORDER BY id LIMIT ?"
)


def _sets(fields: dict[str, Any], allowed: Sequence[str] | frozenset[str]) -> str:
    """``a = ?, b = ?`` for ``fields``, every name checked against the columns it may set."""
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValueError(f"not campaign columns: {', '.join(sorted(unknown))}")
    return ", ".join(f"{k} = ?" for k in fields)


def _row(row: Sequence[Any] | None) -> CampaignRow | None:
    return CampaignRow(*row) if row is not None else None


def _status(c: Conn, campaign_id: str) -> tuple[str, str] | None:
    """(status, account id) of a campaign."""
    row = c.execute("SELECT status, account_id FROM campaigns WHERE id = ?", (campaign_id,))
    found = row.fetchone()
    return (str(found[0]), str(found[1])) if found is not None else None


def _shift_waiting(c: Conn, campaign_id: str, delta: int, cond: str, *args: int) -> int:
    """Move the times of the campaign's waiting messages matching ``cond`` by ``delta``."""
    cur = c.execute(
        f"{_SHIFT}WHERE campaign_id = ? AND {_WAITING} AND {cond}",
        (delta, delta, delta, campaign_id, *args),
    )
    return int(cur.rowcount)


def _hold(c: Conn, campaign_id: str, now: int) -> int:
    # Everything not held or staged already (those are PAUSE_SHIFT / STAGE_SHIFT ahead).
    moved = _shift_waiting(
        c, campaign_id, PAUSE_SHIFT, "next_attempt_at < ?", now + PAUSE_SHIFT // 2
    )
    c.execute(
        "UPDATE campaigns SET status = 'paused', paused_at = ?, updated_at = ? WHERE id = ?",
        (now, now, campaign_id),
    )
    return moved


def _resume(c: Conn, campaign_id: str, paused_at: int, now: int) -> int:
    delta = (now - paused_at) - PAUSE_SHIFT
    # Staged rows (still STAGE_SHIFT ahead) are not held ones: release_staged moves them.
    moved = _shift_waiting(
        c,
        campaign_id,
        delta,
        "next_attempt_at >= ? AND next_attempt_at < ?",
        now + PAUSE_SHIFT // 2,
        now + STAGE_SHIFT // 2,
    )
    c.execute(
        "UPDATE campaigns SET status = 'running', paused_at = NULL, updated_at = ? WHERE id = ?",
        (now, campaign_id),
    )
    return moved


def _release_staged(c: Conn, campaign_id: str, after: str, limit: int) -> tuple[int, str]:
    found = _status(c, campaign_id)
    if found is None or found[0] in (*ENDED, "ingesting"):
        return 0, after
    status, account_id = found
    delta = -STAGE_SHIFT + (PAUSE_SHIFT if status == "paused" else 0)
    staged = now_ms() + STAGE_SHIFT // 2
    ids = [r[0] for r in c.execute(_STAGED_PAGE, (account_id, campaign_id, after, staged, limit))]
    if not ids:
        return 0, after
    # By primary key: the ids are this campaign's staged rows, and a condition on campaign_id
    # here would make SQLite walk ix_messages_campaign (every waiting row of the campaign).
    # Still staged is checked again, so that no row is ever moved twice.
    cur = c.execute(
        f"{_SHIFT}WHERE id IN ({', '.join('?' for _ in ids)}) AND {_WAITING} "
        "AND next_attempt_at >= ?",
        (delta, delta, delta, *ids, staged),
    )
    return max(int(cur.rowcount), 1), str(ids[-1])  # >= 1: more may follow


def _end(c: Conn, campaign_id: str, status: str, only_if: str | None) -> bool:
    cond = "status = ?" if only_if else "status NOT IN (?, ?)"
    args = (only_if,) if only_if else ENDED
    cur = c.execute(
        f"UPDATE campaigns SET status = ?, updated_at = ? WHERE id = ? AND {cond}",
        (status, now_ms(), campaign_id, *args),
    )
    return cur.rowcount == 1


class CampaignStoreMixin:
    """Campaign operations; needs ``_write`` and ``_read`` from the store."""

    async def _write(self, op: Callable[[Conn], T], *, express: bool = False) -> T:
        raise NotImplementedError

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def insert_campaign(self, row: CampaignRow) -> None:
        """Store a new campaign."""
        values = [getattr(row, col) for col in CAMPAIGN_COLUMNS]
        await self._write(lambda c: c.execute(_INSERT, values))

    async def update_campaign(self, campaign_id: str, **fields: Any) -> None:
        """Set columns of a campaign (and its ``updated_at``)."""
        fields["updated_at"] = now_ms()
        sets = _sets(fields, CAMPAIGN_COLUMNS[1:])
        params = [*fields.values(), campaign_id]
        await self._write(lambda c: c.execute(f"UPDATE campaigns SET {sets} WHERE id = ?", params))

    async def get_campaign(self, account_id: str, campaign_id: str) -> CampaignRow | None:
        """One campaign of the account."""
        sql, args = f"{_SELECT} WHERE id = ? AND account_id = ?", (campaign_id, account_id)
        return await self._read(lambda c: _row(c.execute(sql, args).fetchone()))

    async def recent_campaigns(self, limit: int = 10) -> list[CampaignRow]:
        """The newest campaigns of every account that are not canceled (the dashboard)."""
        sql = f"{_SELECT} WHERE status <> 'canceled' ORDER BY created_at DESC, id DESC LIMIT ?"
        rows = await self._read(lambda c: c.execute(sql, (limit,)).fetchall())
        return [CampaignRow(*r) for r in rows]

    async def campaigns_with_status(self, statuses: Sequence[str]) -> list[CampaignRow]:
        """Every campaign (of any account) in one of ``statuses`` (recovery at start)."""
        if not statuses:
            return []
        sql = f"{_SELECT} WHERE status IN ({', '.join('?' for _ in statuses)}) ORDER BY id"
        rows = await self._read(lambda c: c.execute(sql, tuple(statuses)).fetchall())
        return [CampaignRow(*r) for r in rows]

    async def add_campaign_rejects(self, campaign_id: str, rejects: Sequence[Reject]) -> None:
        """Record refused rows (the phone is cut to 64 characters)."""
        rows = [(campaign_id, r.row_no, r.phone[:64], r.error_code) for r in rejects]
        if not rows:
            return
        await self._write(
            lambda c: c.executemany(
                "INSERT INTO campaign_rejects (campaign_id, row_no, phone, error_code) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
        )

    async def campaign_rejects(self, campaign_id: str, after_row: int, limit: int) -> list[Reject]:
        """The next ``limit`` refused rows after line ``after_row``, in line order."""
        args = (campaign_id, after_row, limit)
        rows = await self._read(lambda c: c.execute(_REJECTS_PAGE, args).fetchall())
        return [Reject(int(n), str(phone), str(code)) for n, phone, code in rows]

    async def campaign_messages(
        self, campaign_id: str, after_id: str, limit: int
    ) -> list[CampaignMessage]:
        """The next ``limit`` messages of the campaign after ``after_id``, in id order."""
        args = (campaign_id, campaign_id, after_id, limit)
        rows = await self._read(lambda c: c.execute(_MESSAGES_PAGE, args).fetchall())
        return [CampaignMessage(*r) for r in rows]

    async def campaign_progress(self, campaign_id: str) -> dict[str, int]:
        """Message counts of a campaign by status."""
        rows = await self._read(
            lambda c: c.execute(
                "SELECT status, COUNT(*) FROM messages WHERE campaign_id = ? GROUP BY status",
                (campaign_id,),
            ).fetchall()
        )
        return {str(status): int(n) for status, n in rows}

    async def campaign_ingest_progress(self, campaign_id: str, **counts: int) -> str:
        """Store an ingest's live counts (also its heartbeat); the campaign's status as stored."""
        sets = _sets(counts, _COUNTS)
        sql = f"UPDATE campaigns SET {sets}, updated_at = ? WHERE id = ? AND status = 'ingesting'"

        def op(c: Conn) -> str:
            c.execute(sql, (*counts.values(), now_ms(), campaign_id))
            found = _status(c, campaign_id)
            return found[0] if found is not None else "failed"

        return await self._write(op)

    async def commit_campaign_ingest(self, campaign_id: str, status: str, **counts: int) -> bool:
        """The commit point of an ingest: ``ingesting`` becomes ``status`` with the counts."""
        sets = _sets(counts, _COUNTS)
        sql = (
            f"UPDATE campaigns SET status = ?, {sets}, updated_at = ? "
            "WHERE id = ? AND status = 'ingesting'"
        )
        params = (status, *counts.values(), now_ms(), campaign_id)
        return await self._write(lambda c: c.execute(sql, params).rowcount == 1)

    async def release_staged(
        self, campaign_id: str, after: str = "", limit: int = 5000
    ) -> tuple[int, str]:
        """Bring the next ``limit`` staged messages back; (moved, id to continue after)."""
        return await self._write(lambda c: _release_staged(c, campaign_id, after, limit))

    async def campaign_has_staged(self, campaign_id: str) -> bool:
        """Whether some message of the campaign is still staged."""
        sql = (
            f"SELECT 1 FROM messages WHERE campaign_id = ? AND {_WAITING} "
            "AND next_attempt_at >= ? LIMIT 1"
        )
        args = (campaign_id, now_ms() + STAGE_SHIFT // 2)
        return await self._read(lambda c: c.execute(sql, args).fetchone() is not None)

    async def hold_campaign(self, campaign_id: str, now: int) -> int:
        """Pause: push the waiting messages out of reach; how many were."""
        return await self._write(lambda c: _hold(c, campaign_id, now))

    async def resume_campaign(self, campaign_id: str, paused_at: int, now: int) -> int:
        """Resume: bring held messages back, later by the time spent paused; how many were."""
        return await self._write(lambda c: _resume(c, campaign_id, paused_at, now))

    async def end_campaign(self, campaign_id: str, status: str, *, only_if: str | None) -> bool:
        """Set an ended status (``canceled``/``failed``) unless the campaign has ended already."""
        return await self._write(lambda c: _end(c, campaign_id, status, only_if))

    async def campaign_waiting_ids(self, campaign_id: str, limit: int) -> list[str]:
        """Ids of messages of the campaign still waiting to be sent (for cancelation)."""
        sql = f"SELECT id FROM messages WHERE campaign_id = ? AND {_WAITING} LIMIT ?"
        rows = await self._read(lambda c: c.execute(sql, (campaign_id, limit)).fetchall())
        return [str(r[0]) for r in rows]
