"""The pipeline half of the SQLite store: claims, results, reports, sweeps, outbox, switches.

A mixin of :class:`SqliteStore`; every write is one group-commit operation running the
functions of ``pipeline_ops`` on the writer's connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dakghar.core.message import LANES, Status
from dakghar.store.base import MessageRow, Sent, StatusChange, WebhookEvent, WebhookResult, now_ms
from dakghar.store.rollups import BUCKETS, GROUPS, StatsRow, hour_of, report
from dakghar.store.sql import Conn, in_list, in_lists
from dakghar.store.sql import pipeline_ops as ops

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Hand:
    """Where this process's new outbox events go (``hand_off_webhooks``)."""

    take: Callable[[list[WebhookEvent]], None]
    room: Callable[[], int]
    lease_ms: int


class PipelineStoreMixin:
    """Pipeline operations; needs ``_write`` and ``_read`` from the store."""

    _hand: _Hand | None = None

    async def _write(self, op: Callable[[Conn], T], *, express: bool = False) -> T:
        raise NotImplementedError

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    def hand_off_webhooks(
        self,
        take: Callable[[list[WebhookEvent]], None] | None,
        room: Callable[[], int] = lambda: 0,
        *,
        lease_ms: int = 60_000,
    ) -> None:
        """Give the webhook events this process's moves write to ``take`` (None: stop)."""
        self._hand = _Hand(take, room, lease_ms) if take is not None else None

    async def _moves(self, run: Callable[[Conn, int, ops.OpContext], T]) -> T:
        """Run ``run(conn, now, ctx)`` as one write operation and flush its context; the
        outbox events it handed over (``OpContext.hand_until``) go to the sender once they
        are committed."""
        hand = self._hand
        room = hand.room() if hand is not None else 0
        handed: list[WebhookEvent] = []

        def op(c: Conn) -> T:
            now = now_ms()
            if hand is not None and room > 0:
                ctx = ops.OpContext(now + hand.lease_ms, room)
            else:
                ctx = ops.OpContext()
            out = run(c, now, ctx)
            ctx.flush(c)
            handed[:] = ctx.handed  # an operation run again replaces what an undone run had
            return out

        out = await self._write(op)
        if handed and hand is not None:
            hand.take(handed)
        return out

    async def apply(self, changes: Sequence[StatusChange]) -> list[MessageRow | None]:
        """Apply lifecycle moves atomically."""
        return await self._moves(
            lambda c, now, ctx: [ops.apply_change(c, ch, now, ctx) for ch in changes]
        )

    async def claim(
        self,
        lane: int,
        accounts: Sequence[str],
        per_account: int,
        *,
        lease_ms: int,
        owner: str | None = None,
        sandbox_only: bool = False,
        or_expired: bool = False,
    ) -> tuple[list[MessageRow], dict[str, int | None]]:
        """Claim due queued messages fairly across accounts, for dispatcher ``owner``."""

        def op(c: Conn) -> tuple[list[MessageRow], dict[str, int | None]]:
            now = now_ms()
            return ops.claim(
                c, lane, accounts, per_account, now, now + lease_ms, owner, sandbox_only,
                or_expired,
            )  # fmt: skip

        # The most urgent lane's claims do not queue behind the bulk's batches.
        return await self._write(op, express=lane == LANES[0])

    async def release(self, message_ids: Sequence[str], *, owner: str | None = None) -> None:
        """Undo claims that were never tried: back in the queue at once, the attempt uncounted.
        With ``owner``, only the claims that dispatcher still holds (fencing)."""
        if not message_ids:
            return
        ids = list(message_ids)
        fence = " AND lease_owner = ?" if owner is not None else ""

        def op(c: Conn) -> None:
            among, args = in_list(c, ids)
            c.execute(
                "UPDATE messages SET lease_until = NULL, lease_owner = NULL, "
                "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
                f"WHERE id {among} AND status = 'sending' AND lease_until IS NOT NULL{fence}",
                [*args, owner] if owner is not None else args,
            )

        await self._write(op)

    async def register_dispatcher(self, owner: str, host: str, pid: int) -> None:
        """Enter a dispatcher in the fleet's register (it then heartbeats)."""
        await self._write(lambda c: ops.register_dispatcher(c, owner, host, pid, now_ms()))

    async def heartbeat(self, owner: str) -> int:
        """Say the dispatcher is alive: how many are, or 0 once the fleet declared it dead."""
        return await self._write(lambda c: ops.heartbeat(c, owner, now_ms()))

    async def unregister_dispatcher(self, owner: str) -> None:
        """Leave the register (a clean stop): claims still held become orphans at once."""
        await self._write(lambda c: c.execute("DELETE FROM dispatchers WHERE id = ?", (owner,)))

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
        return (await self.mark_sent_many([Sent(message_id, connector, provider_ids, parts)]))[0]

    async def mark_sent_many(self, sent: Sequence[Sent]) -> list[MessageRow | None]:
        """:meth:`mark_sent` for many messages in one write operation."""

        def run(c: Conn, now: int, ctx: ops.OpContext) -> list[MessageRow | None]:
            if len({s.message_id for s in sent}) == len(sent):
                return _mark_sent_batch(c, sent, now, ctx)
            early = ops.any_early_reports(c)
            return [_mark_sent(c, s, now, ctx, early) for s in sent]

        return await self._moves(run)

    async def report(
        self, connector: str, provider_id: str, change: StatusChange
    ) -> MessageRow | None:
        """A delivery report for one part."""
        return (await self.report_many([(connector, provider_id, change)]))[0]

    async def report_many(
        self, reports: Sequence[tuple[str, str, StatusChange]]
    ) -> list[MessageRow | None]:
        """:meth:`report` for many parts in one write operation."""

        def run(c: Conn, now: int, ctx: ops.OpContext) -> list[MessageRow | None]:
            if c.dialect.server or len(reports) > 1:
                return ops.report_batch(c, reports, now, ctx)
            return [ops.report(c, conn, pid, ch, now, ctx) for conn, pid, ch in reports]

        return await self._moves(run)

    async def sweep(
        self, *, owner: str | None = None, alone: bool = False
    ) -> dict[str, list[MessageRow]]:
        """Time-driven moves, and orphaned claims back to the queue (``ops.sweep``)."""
        return await self._write(lambda c: ops.sweep(c, now_ms(), owner=owner, alone=alone))

    async def claim_webhooks(self, limit: int, *, lease_ms: int) -> list[WebhookEvent]:
        """Due webhook events."""
        rows = await self._write(lambda c: ops.claim_webhooks(c, now_ms(), limit, lease_ms))
        return [WebhookEvent(*r) for r in rows]

    async def webhook_result(
        self, event_id: int, *, delivered: bool, next_attempt_at: int | None, error: str | None
    ) -> None:
        """Record one webhook attempt."""
        await self.webhook_results([WebhookResult(event_id, delivered, next_attempt_at, error)])

    async def webhook_results(self, results: Sequence[WebhookResult]) -> None:
        """Record many webhook attempts in one write operation.

        A delivered event leaves the outbox (one ``DELETE`` for the lot): nothing reads it
        again, the table stays the size of what is still to send, and on PostgreSQL a delete
        writes no new row version and no index entry, where an update to ``delivered`` wrote
        both. A failed one stays, with its last error and attempts."""
        now = now_ms()
        delivered = [r.event_id for r in results if r.delivered]
        # Attempts with the same outcome (a retry's due time, an error) share one statement.
        groups: dict[tuple[str, int, str | None], list[int]] = {}
        for r in results:
            if r.delivered:
                continue
            if r.next_attempt_at is None:
                status, due = "failed", now
            else:
                status, due = "pending", r.next_attempt_at
            groups.setdefault((status, due, r.error), []).append(r.event_id)
        if not groups and not delivered:
            return

        def op(c: Conn) -> None:
            for among, args in in_lists(c, delivered, "integer"):
                c.execute(f"DELETE FROM webhook_events WHERE id {among}", args)
            for (status, due, error), ids in groups.items():
                for among, args in in_lists(c, ids, "integer"):
                    c.execute(
                        "UPDATE webhook_events SET status = ?, attempts = attempts + 1, "
                        f"next_attempt_at = ?, last_error = ? WHERE id {among}",
                        (status, due, error, *args),
                    )

        await self._write(op)

    async def switches(self) -> dict[tuple[str, str], bool]:
        """All kill switches, paused accounts included as scope ``account``."""

        def fn(c: Conn) -> list[tuple[str, str, bool]]:
            rows = c.execute("SELECT scope, name, paused FROM switches").fetchall()
            rows += c.execute(
                "SELECT 'account', id, TRUE FROM accounts WHERE sending_paused = TRUE"
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

        def fn(c: Conn) -> dict[str, Any]:
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


def _sent_fields(s: Sent) -> dict[str, object]:
    """The columns a carrier's acceptance sets (``submitted_at``: its answer, when known, not
    the later write of it)."""
    fields: dict[str, object] = {
        "connector": s.connector,
        "provider_message_id": s.provider_ids[0] if s.provider_ids else None,
    }
    if s.at is not None:
        fields["submitted_at"] = s.at
    return fields


def _mark_sent(c: Conn, s: Sent, now: int, ctx: ops.OpContext, early: bool) -> MessageRow | None:
    fields = _sent_fields(s)
    # One part never exceeds the segments counted at accept (at least one): no read.
    parts = s.parts
    detail = ops.bill_parts(c, s.message_id, parts, fields) if parts and parts > 1 else None
    change = StatusChange(
        s.message_id, Status.SENT.value, detail=detail, fields=fields, owner=s.owner
    )
    msg = ops.apply_change(c, change, now, ctx)
    parts_early = ops.record_parts(
        c, s.message_id, s.connector, s.provider_ids, now, look_early=early
    )
    for waiting in parts_early:
        assert waiting.provider_part is not None
        msg = ops.report(c, s.connector, waiting.provider_part, waiting, now, ctx) or msg
    return msg


def _mark_sent_batch(
    c: Conn, sent: Sequence[Sent], now: int, ctx: ops.OpContext
) -> list[MessageRow | None]:
    """:func:`_mark_sent` for many messages (each once) with a few statements for the lot:
    every part's lock at once (a server's dialect), the messages read (and locked) together,
    early reports taken in one statement (on SQLite, only if there are any) and the parts
    recorded in one, the updates written together (``OpContext.flush_updates``)."""
    keys = [(s.connector, pid) for s in sent for pid in s.provider_ids]
    ops.lock_parts(c, keys)
    rows = ops.preload_messages(c, [s.message_id for s in sent])
    early = ops.take_early_reports(c, keys) if keys and ops.any_early_reports(c) else {}
    out: list[MessageRow | None] = []
    for s in sent:
        fields = _sent_fields(s)
        parts = s.parts
        detail = ops.bill_parts(c, s.message_id, parts, fields) if parts and parts > 1 else None
        change = StatusChange(
            s.message_id, Status.SENT.value, detail=detail, fields=fields, owner=s.owner
        )
        row = rows.get(s.message_id)
        if row is None:
            out.append(None)
        elif detail is not None:  # billed for more parts (rare): written now, as before
            out.append(ops.apply_change(c, change, now, ctx, row))
        else:
            out.append(ops.apply_change(c, change, now, ctx, row, defer=True))
    ops.insert_parts(c, [(s.connector, s.message_id, s.provider_ids) for s in sent])
    ctx.flush_updates(c)  # before early reports read the messages
    for i, s in enumerate(sent):
        for pid in s.provider_ids:
            got = early.get((s.connector, pid))
            if got is None:
                continue
            waiting = StatusChange(
                s.message_id,
                str(got[0]),
                error_code=got[1],
                detail=got[2],
                at=got[3],
                provider_part=pid,
            )
            out[i] = ops.report(c, s.connector, pid, waiting, now, ctx) or out[i]
    return out
