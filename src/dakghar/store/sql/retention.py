"""The retention purge of the SQLite store: message bodies older than the account's period.

A mixin of :class:`SqliteStore`. API.md promises a message's ``body`` "until the account's
retention period purges it (then null)": each account keeps bodies ``retention_days`` (30 by
default; 0 or less keeps them for ever) after ``created_at``, and only messages in a final
status lose theirs, so nothing still on its way to a carrier is touched. The rest of the row
(status, events, billing) stays; only ``body`` and the OTP's ``redacted_body`` become NULL.

The purge must never hold the one writer for long, since every accept waits behind it. So the
search runs on a reader connection (WAL: it blocks no one), walking each account's final
messages in id order through ``ix_messages_account_status``, and the writer only ever gets a
list of at most ``limit`` ids to clear by primary key: one short statement per batch, with other
operations free to commit between batches. Measured on 212,000 old bodies (a busy 2-core
box): batches of 5,000 held the writer a median 113 ms (max 202), batches of 1,000 a median
14 ms (max 91), for the same 10 s in all; hence 1,000. A later run over the same rows, with
nothing left to purge, reads for about 1 s and writes nothing. The update re-checks the
conditions, so a row that changed between search and update (it cannot: final is final,
``created_at`` never moves) would be skipped, not wrongly cleared. Started from the app's
lifespan (``api/app.py``) and by ``dakghar purge`` (``cli/upkeep.py``), not by the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeVar

from dakghar.core.message import FINAL_STATUSES
from dakghar.store.sql import Conn, in_list

T = TypeVar("T")

DAY_MS = 24 * 3600 * 1000
_FINAL = tuple(sorted(s.value for s in FINAL_STATUSES))
_HOLDS_BODY = "(body IS NOT NULL OR redacted_body IS NOT NULL)"
_FIND = (
    "SELECT id FROM messages WHERE account_id = ? AND status = ? AND id > ? "
    f"AND created_at < ? AND {_HOLDS_BODY} ORDER BY id LIMIT ?"
)
_CLEAR = (
    "UPDATE messages SET body = NULL, redacted_body = NULL "
    "WHERE id {among} AND created_at < ? "
    f"AND status IN ({', '.join('?' for _ in _FINAL)}) AND {_HOLDS_BODY}"
)


def _find(found: tuple[str, str, str, int, int], c: Conn) -> list[str]:
    return [r[0] for r in c.execute(_FIND, found)]


def _clear(ids: list[str], cutoff: int, c: Conn) -> int:
    among, args = in_list(c, ids)
    return c.execute(_CLEAR.format(among=among), (*args, cutoff, *_FINAL)).rowcount


class RetentionStoreMixin:
    """``purge_bodies``; needs ``_write`` and ``_read`` from the store."""

    async def _write(self, op: Callable[[Conn], T], *, express: bool = False) -> T:
        raise NotImplementedError

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def purge_bodies(self, now: int, limit: int = 1000) -> int:
        """Clear the bodies of final messages older than their account's retention at ``now``;
        at most ``limit`` rows per write statement. How many messages lost their body."""
        accounts = await self._read(
            lambda c: c.execute(
                "SELECT id, retention_days FROM accounts WHERE retention_days > 0 ORDER BY id"
            ).fetchall()
        )
        purged = 0
        for account_id, days in accounts:
            cutoff = now - int(days) * DAY_MS
            for status in _FINAL:
                purged += await self._purge_one(account_id, status, cutoff, limit)
        return purged

    async def _purge_one(self, account_id: str, status: str, cutoff: int, limit: int) -> int:
        purged, after = 0, ""
        while True:
            ids = await self._read(partial(_find, (account_id, status, after, cutoff, limit)))
            if not ids:
                return purged
            purged += await self._write(partial(_clear, ids, cutoff))
            if len(ids) < limit:
                return purged
            after = ids[-1]
