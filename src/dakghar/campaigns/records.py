"""The campaign tables: the campaign row, refused CSV rows, and progress read from messages.

A campaign's messages carry ``campaign_id`` (partial index on ``(campaign_id, status)``), so
progress is one index-only ``GROUP BY`` and needs no counters kept in step with the pipeline.
Pausing pushes the campaign's waiting messages far into the future (``PAUSE_SHIFT``) so neither
the dispatcher nor the scheduler sweep picks them; resuming pulls them back, shifted by the time
spent paused, which keeps their order and pacing.

Staging: while a CSV is being ingested its messages are written *staged*, that is moved
``STAGE_SHIFT`` (a century) into the future: the dispatcher claims only due ``queued`` messages
and the scheduler sweep releases only due ``scheduled`` ones, so a staged row is never sent, and
nothing about it needs a status the rest of the gateway does not know. The commit point of an
ingest is one UPDATE of the campaign row (``ingesting`` -> ``running``/``scheduled``); only
after it are the staged rows brought back (``release_staged``) in chunks, so that a million-row
campaign never holds the single writer for seconds (a one-statement flip of 1M rows took
6.8 s here, stalling every OTP behind it). A crash before the commit point leaves an inert
campaign that ``fail_orphan`` ends ``failed`` with its rows canceled and refunded; a crash after
it is rolled forward by releasing what is still staged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from dakghar.core.message import FAILED_STATUSES
from dakghar.store.base import now_ms
from dakghar.store.sql import Conn
from dakghar.store.sqlite.store import SqliteStore

PAUSE_SHIFT = 10 * 365 * 24 * 3600 * 1000
STAGE_SHIFT = 100 * 365 * 24 * 3600 * 1000  # beyond any paused message (PAUSE_SHIFT)
ENDED = ("canceled", "failed")  # stored statuses nothing leaves (``completed`` is computed)
WAITING = ("scheduled", "queued")
FAILED = tuple(sorted(s.value for s in FAILED_STATUSES))  # core.message is the one home


@dataclass(slots=True)
class CampaignRow:
    """A campaign as stored."""

    id: str
    account_id: str
    name: str | None
    type: str
    sender: str | None
    status: str
    rate_per_second: int | None
    schedule_at: int | None
    total: int
    valid: int
    invalid: int
    duplicates: int
    dnd_filtered: int
    paused_at: int | None
    created_at: int
    updated_at: int


COLUMNS = tuple(CampaignRow.__dataclass_fields__)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM campaigns"
_REJECTS_PAGE = (
    "SELECT row_no, phone, error_code FROM campaign_rejects WHERE campaign_id = ? "
    "AND row_no > ? ORDER BY row_no LIMIT ?"
)
_MESSAGES_PAGE = (
    "SELECT id, to_number, status, error_code FROM messages WHERE campaign_id = ? "
    "AND id > ? ORDER BY id LIMIT ?"
)


async def insert(store: SqliteStore, row: CampaignRow) -> None:
    """Store a new campaign."""
    sql = f"INSERT INTO campaigns ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    values = [getattr(row, c) for c in COLUMNS]
    await store._write(lambda c: c.execute(sql, values))


async def update(store: SqliteStore, campaign_id: str, **fields: Any) -> None:
    """Set columns of a campaign."""
    fields["updated_at"] = now_ms()
    sets = ", ".join(f"{k} = ?" for k in fields)
    params = [*fields.values(), campaign_id]
    await store._write(lambda c: c.execute(f"UPDATE campaigns SET {sets} WHERE id = ?", params))


async def add_rejects(
    store: SqliteStore, campaign_id: str, rejects: Sequence[tuple[int, str, str]]
) -> None:
    """Record refused rows: (row number, phone as written, error code)."""
    rows = [(campaign_id, n, phone[:64], code) for n, phone, code in rejects]
    await store._write(
        lambda c: c.executemany(
            "INSERT INTO campaign_rejects (campaign_id, row_no, phone, error_code) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )
    )


async def get(store: SqliteStore, account_id: str, campaign_id: str) -> CampaignRow | None:
    """One campaign of the account."""
    row = await store._read(
        lambda c: c.execute(
            f"{_SELECT} WHERE id = ? AND account_id = ?", (campaign_id, account_id)
        ).fetchone()
    )
    return CampaignRow(*row) if row else None


async def recent(store: SqliteStore, limit: int = 10) -> list[CampaignRow]:
    """The newest campaigns of every account that are not canceled (the operator dashboard)."""
    rows = await store._read(
        lambda c: c.execute(
            f"{_SELECT} WHERE status != 'canceled' ORDER BY created_at DESC LIMIT ?", (limit,)
        ).fetchall()
    )
    return [CampaignRow(*r) for r in rows]


async def progress(store: SqliteStore, campaign_id: str) -> dict[str, int]:
    """Message counts of a campaign by status."""
    rows = await store._read(
        lambda c: c.execute(
            "SELECT status, COUNT(*) FROM messages WHERE campaign_id = ? GROUP BY status",
            (campaign_id,),
        ).fetchall()
    )
    return {status: int(n) for status, n in rows}


def _shift(c: Conn, campaign_id: str, delta: int, cond: str, args: tuple[Any, ...]) -> int:
    cur = c.execute(
        "UPDATE messages SET next_attempt_at = next_attempt_at + ?, "
        "schedule_at = CASE WHEN schedule_at IS NULL THEN NULL ELSE schedule_at + ? END, "
        "expires_at = expires_at + ? "
        f"WHERE campaign_id = ? AND status IN ('scheduled', 'queued') AND {cond}",
        (delta, delta, delta, campaign_id, *args),
    )
    return cur.rowcount


async def hold(store: SqliteStore, campaign_id: str, now: int) -> int:
    """Push the waiting messages out of reach; how many were."""

    def op(c: Conn) -> int:
        moved = _shift(
            c, campaign_id, PAUSE_SHIFT, "next_attempt_at < ?", (now + PAUSE_SHIFT // 2,)
        )
        c.execute(
            "UPDATE campaigns SET status = 'paused', paused_at = ?, updated_at = ? WHERE id = ?",
            (now, now, campaign_id),
        )
        return moved

    return await store._write(op)


async def release(store: SqliteStore, campaign_id: str, paused_at: int, now: int) -> int:
    """Bring held messages back, later by the time spent paused; how many were."""

    def op(c: Conn) -> int:
        delta = (now - paused_at) - PAUSE_SHIFT
        # Staged rows (still STAGE_SHIFT ahead) are not held ones: release_staged moves them.
        moved = _shift(
            c,
            campaign_id,
            delta,
            "next_attempt_at >= ? AND next_attempt_at < ?",
            (now + PAUSE_SHIFT // 2, now + STAGE_SHIFT // 2),
        )
        c.execute(
            "UPDATE campaigns SET status = 'running', paused_at = NULL, updated_at = ? "
            "WHERE id = ?",
            (now, campaign_id),
        )
        return moved

    return await store._write(op)


async def ingest_progress(store: SqliteStore, campaign_id: str, **counts: int) -> str:
    """Store an ingest's live counts (also its heartbeat); the campaign's status as stored.

    The status tells a running ingest whether it was canceled meanwhile (by the API, maybe from
    another process) and must stop.
    """

    def op(c: Conn) -> str:
        sets = ", ".join(f"{k} = ?" for k in counts)
        c.execute(
            f"UPDATE campaigns SET {sets}, updated_at = ? WHERE id = ? AND status = 'ingesting'",
            (*counts.values(), now_ms(), campaign_id),
        )
        row = c.execute("SELECT status FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        return str(row[0]) if row else "failed"

    return await store._write(op)


async def commit_ingest(store: SqliteStore, campaign_id: str, status: str, **counts: int) -> bool:
    """The commit point of an ingest: ``ingesting`` becomes ``status`` with the final counts.

    False when the campaign is no longer ``ingesting`` (canceled, or failed by a recovery).
    """
    sets = ", ".join(f"{k} = ?" for k in counts)

    def op(c: Conn) -> bool:
        cur = c.execute(
            f"UPDATE campaigns SET status = ?, {sets}, updated_at = ? "
            "WHERE id = ? AND status = 'ingesting'",
            (status, *counts.values(), now_ms(), campaign_id),
        )
        return cur.rowcount == 1

    return await store._write(op)


async def release_staged(
    store: SqliteStore, campaign_id: str, after: int = 0, limit: int = 5000
) -> tuple[int, int]:
    """Bring the next ``limit`` staged messages back to their real times.

    Returns how many were moved and the rowid to continue ``after`` (walking the campaign's
    index in rowid order, so that each chunk starts where the last ended instead of scanning
    over the rows already released); (0, after) when nothing is left. Runs only once the ingest
    has committed: nothing is released for a campaign still ``ingesting`` or ended. Into a
    paused campaign they come back held, like its other messages, so that ``release``
    (resume) moves them with the rest.
    """

    def op(c: Conn) -> tuple[int, int]:
        row = c.execute("SELECT status FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        if row is None or row[0] in (*ENDED, "ingesting"):
            return 0, after
        delta = -STAGE_SHIFT + (PAUSE_SHIFT if row[0] == "paused" else 0)
        ids = [
            r[0]
            for r in c.execute(
                "SELECT rowid FROM messages WHERE campaign_id = ? AND status IN "
                "('scheduled', 'queued') AND rowid > ? ORDER BY rowid LIMIT ?",
                (campaign_id, after, limit),
            )
        ]
        if not ids:
            return 0, after
        cur = c.execute(
            "UPDATE messages SET next_attempt_at = next_attempt_at + ?, "
            "schedule_at = CASE WHEN schedule_at IS NULL THEN NULL ELSE schedule_at + ? END, "
            "expires_at = expires_at + ? WHERE rowid BETWEEN ? AND ? AND campaign_id = ? "
            "AND status IN ('scheduled', 'queued') AND next_attempt_at >= ?",
            (delta, delta, delta, ids[0], ids[-1], campaign_id, now_ms() + STAGE_SHIFT // 2),
        )
        return max(cur.rowcount, 1), ids[-1]  # >= 1: more may follow

    return await store._write(op)


async def end(store: SqliteStore, campaign_id: str, status: str, *, only_if: str | None) -> bool:
    """Set an ended status (``canceled``/``failed``), if the campaign is not ended already.

    With ``only_if``, only from that status (a recovery fails only what is still ingesting).
    """

    def op(c: Conn) -> bool:
        cond = "status = ?" if only_if else "status NOT IN (?, ?)"
        args = (only_if,) if only_if else ENDED
        cur = c.execute(
            f"UPDATE campaigns SET status = ?, updated_at = ? WHERE id = ? AND {cond}",
            (status, now_ms(), campaign_id, *args),
        )
        return cur.rowcount == 1

    return await store._write(op)


async def with_status(store: SqliteStore, statuses: Sequence[str]) -> list[CampaignRow]:
    """Every campaign (of any account) in one of ``statuses`` (recovery at start)."""
    marks = ", ".join("?" * len(statuses))
    rows = await store._read(
        lambda c: c.execute(f"{_SELECT} WHERE status IN ({marks})", tuple(statuses)).fetchall()
    )
    return [CampaignRow(*r) for r in rows]


async def has_staged(store: SqliteStore, campaign_id: str) -> bool:
    """Whether some message of the campaign is still staged."""
    row = await store._read(
        lambda c: c.execute(
            "SELECT 1 FROM messages WHERE campaign_id = ? AND status IN ('scheduled', 'queued') "
            "AND next_attempt_at >= ? LIMIT 1",
            (campaign_id, now_ms() + STAGE_SHIFT // 2),
        ).fetchone()
    )
    return row is not None


async def waiting_ids(store: SqliteStore, campaign_id: str, limit: int) -> list[str]:
    """Ids of messages still waiting to be sent (for cancelation)."""
    rows = await store._read(
        lambda c: c.execute(
            "SELECT id FROM messages WHERE campaign_id = ? AND status IN ('scheduled', 'queued') "
            "LIMIT ?",
            (campaign_id, limit),
        ).fetchall()
    )
    return [r[0] for r in rows]


def _page(sql: str, args: tuple[Any, ...], c: Conn) -> list[Any]:
    return c.execute(sql, args).fetchall()


async def report_rows(
    store: SqliteStore, campaign_id: str, page: int = 5000
) -> AsyncIterator[tuple[str, str, str, str]]:
    """(phone, status, error_code, message_id) for every row: refused rows, then messages.

    Read page by page (keyset pagination), so a million-row report never sits in memory.
    """
    after = -1
    while True:
        args: tuple[Any, ...] = (campaign_id, after, page)
        rows = await store._read(partial(_page, _REJECTS_PAGE, args))
        for _, phone, code in rows:
            yield phone, "rejected", code, ""
        if len(rows) < page:
            break
        after = rows[-1][0]
    last = ""
    while True:
        args = (campaign_id, last, page)
        msgs = await store._read(partial(_page, _MESSAGES_PAGE, args))
        for mid, to, status, code in msgs:
            yield to, status, code or "", mid
        if len(msgs) < page:
            break
        last = msgs[-1][0]
