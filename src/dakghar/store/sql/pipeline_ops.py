"""The delivery pipeline's writes on SQLite, as functions of the writer's connection.

Each function runs inside one group-commit operation, so every status change lands atomically
with its event row and, when the message has a callback URL, its webhook outbox row. The
lifecycle rule (``core.message.can_transition``) is checked here for every move.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, cast

import msgspec

from dakghar.core.ids import new_id
from dakghar.core.message import LANES, Status, WebhookEvents, can_transition, is_retry_note
from dakghar.core.times import iso
from dakghar.store.base import (
    DEAD_AFTER_MS,
    IMPLIED,
    MESSAGE_COLUMNS,
    MessageRow,
    StatusChange,
    WebhookEvent,
)
from dakghar.store.rollups import BUCKETS, FAILED, bucket, hour_of, shard
from dakghar.store.sql import Conn, column_types, columns, in_list, in_lists, unnest

_SELECT = f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages"
_encode = msgspec.json.Encoder().encode


def _rows(cur: Iterable[tuple[object, ...]]) -> list[MessageRow]:
    out = []
    for r in cur:
        m = MessageRow(*r)  # type: ignore[arg-type]
        m.sandbox = bool(m.sandbox)
        out.append(m)
    return out


_BUCKET_COLS = tuple(f"d{i}" for i in range(len(BUCKETS)))
_ROLLUP_SQL = (
    "INSERT INTO stats_hourly (account_id, hour, carrier, region, connector, type, shard, "
    "submitted, delivered, failed, delivery_ms, "
    + ", ".join(f"d{i}" for i in range(len(BUCKETS)))
    + ") VALUES ("
    + ", ".join("?" * (11 + len(BUCKETS)))
    + ") ON CONFLICT (account_id, hour, carrier, region, connector, type, shard) DO UPDATE SET "
    + ", ".join(
        f"{col} = stats_hourly.{col} + excluded.{col}"
        for col in ("submitted", "delivered", "failed", "delivery_ms", *_BUCKET_COLS)
    )
)


class OpContext:
    """What one write operation shares across the messages it moves.

    Rollup increments are summed per key and written once when the operation ends (one upsert
    per (account, hour, carrier, region, connector, type) instead of one per message), and
    each account's ``webhook_events`` is read at most once. Both land in the same transaction
    as the moves they count, so analytics stay exact and atomic.
    """

    __slots__ = ("hand_limit", "hand_until", "handed", "rollups", "updates", "wants", "webhooks")

    def __init__(self, hand_until: int | None = None, hand_limit: int = 0) -> None:
        self.rollups: dict[tuple[object, ...], list[int]] = {}
        self.wants: dict[str, WebhookEvents | None] = {}
        self.webhooks: list[tuple[object, ...]] = []  # outbox rows, written by flush
        # Deferred message updates (``apply_change(defer=True)``) by the columns they set.
        self.updates: dict[tuple[str, ...], list[tuple[object, ...]]] = {}
        # Outbox rows written already leased, until ``hand_until``, to this process's sender
        # (at most ``hand_limit`` of them), and given to it after the commit: ``handed``.
        self.hand_until, self.hand_limit = hand_until, hand_limit
        self.handed: list[WebhookEvent] = []

    def flush_updates(self, c: Conn) -> None:
        """Write the deferred message updates: one ``UPDATE ... FROM unnest(...)`` per set of
        columns (PostgreSQL), or one prepared ``UPDATE`` run for every row (SQLite, in
        process: no round trips to save). Call before anything in the operation reads those
        messages."""
        if not c.dialect.server:
            for cols, rows in self.updates.items():
                sets = ", ".join(f"{k} = ?" for k in cols)
                c.executemany(
                    f"UPDATE messages SET {sets} WHERE id = ?", [(*r[1:], r[0]) for r in rows]
                )
            self.updates.clear()
            return
        types = column_types("messages")
        for cols, rows in self.updates.items():
            sets = ", ".join(f"{k} = v.{k}" for k in cols)
            c.execute(
                f"UPDATE messages AS m SET {sets} FROM {unnest([types[k] for k in ('id', *cols)])}"
                f" AS v(id, {', '.join(cols)}) WHERE m.id = v.id",
                columns(rows, len(cols) + 1),
            )
        self.updates.clear()

    def count(self, key: tuple[object, ...], values: Sequence[int]) -> None:
        """Add one message's increments (submitted, delivered, failed, delivery_ms, d0..)."""
        acc = self.rollups.get(key)
        if acc is None:
            self.rollups[key] = list(values)
        else:
            for i, v in enumerate(values):
                acc[i] += v

    def flush(self, c: Conn) -> None:
        """Write the deferred updates, the summed rollups and the queued webhook outbox rows."""
        if self.updates:
            self.flush_updates(c)
        if self.rollups:
            c.executemany(_ROLLUP_SQL, [(*k, *v) for k, v in self.rollups.items()])
            self.rollups.clear()
        if self.webhooks:
            rows, self.webhooks = self.webhooks, []
            if self.hand_until is not None and self.hand_limit > 0:
                rows = self._hand_off(c, rows)
            if rows and c.dialect.server:  # one statement for the lot
                c.execute(_WEBHOOK_UNNEST, columns(rows, 7))
            elif rows:
                c.executemany(_WEBHOOK_INSERT, rows)

    def _hand_off(self, c: Conn, rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        """Write the outbox rows that can go straight to this process's sender, leased to it,
        into ``handed``; return the others (written due now, for a claim).

        A message's events must arrive in order, one at a time (``claim_webhooks``), so only
        the first of its rows here can be handed over, and only if no older event of it is
        still pending. Under the default ``webhook_events`` (the final status only) that is
        every row: the sender then needs no claim, no lease update, and no scan of the due
        index. If this process dies before it sends them, the lease runs out and any sender
        claims them then, as with events it had claimed ahead.
        """
        first: dict[str, int] = {}
        for i, row in enumerate(rows):
            first.setdefault(str(row[2]), i)
            if len(first) >= self.hand_limit:
                break
        among, args = in_list(c, list(first))
        for (busy,) in c.execute(
            f"SELECT DISTINCT message_id FROM webhook_events WHERE status = 'pending' "
            f"AND message_id {among}",
            args,
        ):
            first.pop(str(busy), None)
        if not first:
            return rows
        chosen = set(first.values())
        leased = [(*rows[i][:5], self.hand_until, rows[i][6]) for i in sorted(chosen)]
        if c.dialect.server:
            got = c.execute(_WEBHOOK_UNNEST + _RETURNING, columns(leased, 7)).fetchall()
        else:
            got = []
            for i in range(0, len(leased), _HAND_CHUNK):
                chunk = leased[i : i + _HAND_CHUNK]
                sql = _WEBHOOK_INSERT.replace(_WEBHOOK_ROW, ", ".join([_WEBHOOK_ROW] * len(chunk)))
                got += c.execute(sql + _RETURNING, [v for r in chunk for v in r]).fetchall()
        ids = {str(r[1]): int(r[0]) for r in got}
        for r in leased:
            event_id, account_id, message_id, url, payload = (str(v) for v in r[:5])
            event = WebhookEvent(
                ids[event_id], event_id, account_id, message_id, url, payload, 0, cast(int, r[6])
            )
            self.handed.append(event)
        self.hand_limit -= len(leased)
        return [row for i, row in enumerate(rows) if i not in chosen]


def roll_up(c: Conn, msg: MessageRow, new: Status, now: int, ctx: OpContext | None = None) -> None:
    """Count a status change in the hourly delivery analytics (``store.rollups``)."""
    counts = [0, 0, 0]
    delivery_ms = 0
    hist = [0] * len(BUCKETS)
    if new is Status.SENT:
        counts[0] = 1
    elif new is Status.DELIVERED:
        counts[1] = 1
        if msg.submitted_at is not None and msg.delivered_at is not None:
            delivery_ms = max(0, msg.delivered_at - msg.submitted_at)
            hist[bucket(delivery_ms / 1000)] = 1
    elif new.value in FAILED:
        counts[2] = 1
    else:
        return
    key = (msg.account_id, hour_of(now), msg.carrier or "", msg.region or "", msg.connector or "",
           msg.type, shard())  # fmt: skip
    if ctx is not None:
        ctx.count(key, (*counts, delivery_ms, *hist))
    else:
        c.execute(_ROLLUP_SQL, (*key, *counts, delivery_ms, *hist))


def apply_change(
    c: Conn,
    change: StatusChange,
    now: int,
    ctx: OpContext | None = None,
    row: tuple[object, ...] | None = None,
    defer: bool = False,
) -> MessageRow | None:
    """Move one message if the lifecycle allows it; write its event and webhook. None if not.

    With ``ctx`` the rollup is summed into it (the caller flushes); without, it is written now.
    ``row``: the message's columns when the caller has just read them (and locked them).
    ``defer`` (with ``ctx``): the message's update waits for ``ctx.flush_updates``.
    """
    if row is None:
        row = c.execute(
            f"{_SELECT} WHERE id = ?{c.dialect.for_update}", (change.message_id,)
        ).fetchone()
        if row is None:
            return None
    msg = _rows([row])[0]
    if (
        change.owner is not None
        and msg.status == Status.SENDING.value
        and msg.lease_owner != change.owner
    ):
        return None  # fenced: the claim was rescued from this dispatcher
    new = Status(change.status)
    retry = is_retry_note(Status(msg.status), new)
    if not retry and not can_transition(Status(msg.status), new):
        return None
    values = dict(change.fields)
    values["status"] = new.value
    values["updated_at"] = now
    if change.error_code is not None:
        values["error_code"] = change.error_code
        values["error_detail"] = change.detail
    if new is Status.SENT and "submitted_at" not in values:
        values["submitted_at"] = now
    if new is Status.DELIVERED:
        values["delivered_at"] = change.at or now
    if new.is_final or new is Status.SENT:
        values["lease_until"] = None
    if "lease_until" in values and values["lease_until"] is None:
        values["lease_owner"] = None  # the claim ends with its lease
    if (new.is_final or new is Status.SENT) and msg.redacted_body is not None and not msg.sandbox:
        # An OTP's code leaves us with the carrier only. Not on a retry: the next attempt
        # still has to carry the code.
        values["body"] = msg.redacted_body
    if change.refund and msg.price_milli:
        c.execute(
            "UPDATE accounts SET balance_milli = balance_milli + ? WHERE id = ?",
            (msg.price_milli, msg.account_id),
        )
        values["price_milli"] = 0
    if defer and ctx is not None:
        ctx.updates.setdefault(tuple(values), []).append((msg.id, *values.values()))
    else:
        sets = ", ".join(f"{k} = ?" for k in values)
        c.execute(f"UPDATE messages SET {sets} WHERE id = ?", [*values.values(), msg.id])
    at = change.at or now
    if change.detail is not None or new not in IMPLIED:
        c.execute(
            "INSERT INTO message_events (message_id, status, at, detail) VALUES (?, ?, ?, ?)",
            (msg.id, new.value, at, change.detail),
        )
    for key, value in values.items():
        setattr(msg, key, value)
    if retry:
        return msg  # an attempt, not a status change: no rollup, no webhook
    roll_up(c, msg, new, now, ctx)
    if msg.callback_url and _wants_webhook(c, msg.account_id, new, ctx):
        enqueue_webhook(c, msg, new, at, now, ctx)
    return msg


_WEBHOOK_ROW = "(?, ?, ?, ?, ?, 'pending', 0, ?, ?)"
_RETURNING = " RETURNING id, event_id"
_HAND_CHUNK = 256  # rows per insert of handed-over events on SQLite (7 values each)
_WEBHOOK_INSERT = (
    "INSERT INTO webhook_events (event_id, account_id, message_id, url, payload, status, "
    f"attempts, next_attempt_at, created_at) VALUES {_WEBHOOK_ROW}"
)
_WEBHOOK_UNNEST = (
    "INSERT INTO webhook_events (event_id, account_id, message_id, url, payload, status, "
    "attempts, next_attempt_at, created_at) SELECT e, a, m, u, p, 'pending', 0, n, c FROM "
    + unnest(["text"] * 5 + ["bigint"] * 2)
    + " AS v(e, a, m, u, p, n, c)"
)


def enqueue_webhook(
    c: Conn, msg: MessageRow, new: Status, at: int, now: int, ctx: OpContext | None = None
) -> None:
    """Write the ``message.status`` webhook for ``msg`` reaching ``new`` into the outbox (with
    ``ctx``, when the operation flushes it)."""
    event_id = new_id("evt")
    payload = _encode(
        {
            "event_id": event_id,
            "type": "message.status",
            "message_id": msg.id,
            "status": new.value,
            "error_code": msg.error_code,
            "reference": msg.reference,
            "at": iso(at),
            "segments": msg.segments,
            "connector": msg.connector,
        }
    ).decode()
    row = (event_id, msg.account_id, msg.id, msg.callback_url, payload, now, now)
    if ctx is not None:
        ctx.webhooks.append(row)
    else:
        c.execute(_WEBHOOK_INSERT, row)


def _wants_webhook(c: Conn, account_id: str, new: Status, ctx: OpContext | None = None) -> bool:
    if new.is_final:
        return True  # every setting POSTs the final status: no lookup on the common path
    if ctx is not None and account_id in ctx.wants:
        setting = ctx.wants[account_id]
    else:
        row = c.execute(
            "SELECT webhook_events FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        setting = WebhookEvents(row[0]) if row is not None else None
        if ctx is not None:
            ctx.wants[account_id] = setting
    return setting is not None and setting.wants(new)


def register_dispatcher(c: Conn, owner: str, host: str, pid: int, now: int) -> None:
    """Enter a dispatcher in the fleet's register."""
    c.execute(
        "INSERT INTO dispatchers (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
        (owner, host, pid, now, now),
    )


def heartbeat(c: Conn, owner: str, now: int) -> int:
    """Say ``owner`` is alive: how many dispatchers are (``owner`` among them), or 0 when the
    fleet has declared it dead (row swept away)."""
    if not c.execute("UPDATE dispatchers SET heartbeat_at = ? WHERE id = ?", (now, owner)).rowcount:
        return 0
    row = c.execute(
        "SELECT COUNT(*) FROM dispatchers WHERE heartbeat_at >= ?", (now - DEAD_AFTER_MS,)
    ).fetchone()
    return max(1, int(row[0]))


# The queue (index ix_messages_queue): new messages, and retries that keep their ``sending``
# status with no lease while they wait for their next attempt.
WAITING = "status IN ('queued', 'sending') AND lease_until IS NULL"


def claim(
    c: Conn,
    lane: int,
    accounts: Sequence[str],
    per_account: int,
    now: int,
    lease_until: int,
    owner: str | None = None,
    sandbox_only: bool = False,
    or_expired: bool = False,
) -> tuple[list[MessageRow], dict[str, int | None]]:
    """Claim due queued messages of ``lane``, up to ``per_account`` from each account in turn.

    Returns the claimed rows (now ``sending`` with a lease) and, for every account that ran dry,
    when its next message falls due (None: nothing queued in this lane any more). Only a first
    claim makes a ``sending`` event (``claimed_at``); a retry's was written when it was
    scheduled. With ``sandbox_only``, only sandbox messages are claimed, and "dry" counts only
    them (index ix_messages_sandbox_queue); ``or_expired`` adds live messages past their
    validity, which the claimer then expires (a scan of the account's queue: for now and then,
    not every claim).
    """
    claimed: list[MessageRow] = []
    dry: dict[str, int | None] = {}
    waiting = WAITING
    if sandbox_only:
        mine = f"sandbox IS {c.dialect.true}"
        waiting += f" AND ({mine} OR expires_at <= {int(now)})" if or_expired else f" AND {mine}"
    for account in accounts:
        found = c.execute(
            f"SELECT id, status FROM messages WHERE {waiting} AND lane = ? AND account_id = ? "
            f"AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?{c.dialect.skip_locked}",
            (lane, account, now, per_account),
        ).fetchall()
        if len(found) < per_account:
            nxt = c.execute(
                f"SELECT MIN(next_attempt_at) FROM messages WHERE {waiting} AND lane = ? "
                "AND account_id = ? AND next_attempt_at > ?",
                (lane, account, now),
            ).fetchone()[0]
            dry[account] = nxt
        if not found:
            continue
        ids = [r[0] for r in found]
        first = {r[0] for r in found if r[1] == Status.QUEUED.value}  # not retries
        among, args = in_list(c, ids)
        # A first claim's event is its ``claimed_at`` (``history``), not a row of its own.
        c.execute(
            "UPDATE messages SET status = 'sending', lease_until = ?, lease_owner = ?, "
            "claimed_at = CASE WHEN status = 'queued' THEN ? ELSE claimed_at END, "
            f"attempts = attempts + 1, updated_at = ? WHERE id {among}",
            (lease_until, owner, now, now, *args),
        )
        rows = _rows(c.execute(f"{_SELECT} WHERE id {among}", args))
        hooked = [r for r in rows if r.callback_url and r.id in first]
        if hooked and _wants_webhook(c, account, Status.SENDING):
            for r in hooked:
                enqueue_webhook(c, r, Status.SENDING, now, now)
        claimed += rows
    return claimed, dry


def waiting_accounts(c: Conn) -> list[tuple[int, str, int]]:
    """Every (lane, account, earliest due) with queued messages.

    A skip scan over the partial queue index (lane, account_id, next_attempt_at): one seek per
    account instead of a pass over every queued message, so the dispatcher can ask every few
    seconds even with a million messages waiting.
    """
    out: list[tuple[int, str, int]] = []
    for lane in LANES:
        account = ""
        while True:
            row = c.execute(
                f"SELECT account_id, next_attempt_at FROM messages {c.dialect.queue_index} "
                f"WHERE {WAITING} AND lane = ? AND account_id > ? "
                "ORDER BY account_id, next_attempt_at LIMIT 1",
                (lane, account),
            ).fetchone()
            if row is None:
                break
            account = str(row[0])
            out.append((lane, account, int(row[1])))
    return out


def bill_parts(c: Conn, message_id: str, parts: int, fields: dict[str, object]) -> str | None:
    """Bill a message that went out in more parts than its segments (a connector whose UDH is
    larger than the one accept counted with): set ``segments``/``price_milli`` in ``fields``,
    debit the difference, and return the event detail saying so. None when nothing changes."""
    row = c.execute(
        f"SELECT account_id, segments, price_milli, status FROM messages WHERE id = ?"
        f"{c.dialect.for_update}",
        (message_id,),
    ).fetchone()
    if row is None or parts <= row[1] or row[3] != Status.SENDING.value:
        return None
    account_id, segments, price = row[0], int(row[1]), int(row[2])
    extra = price // segments * (parts - segments) if segments else 0
    fields.update(segments=parts, price_milli=price + extra)
    if extra:
        c.execute(
            "UPDATE accounts SET balance_milli = balance_milli - ? WHERE id = ?",
            (extra, account_id),
        )
    return f"sent as {parts} parts (the connector's header leaves less room); billed {parts}"


def any_early_reports(c: Conn) -> bool:
    """Whether any report waits for its message's ids (rare: read once per operation).

    Only meaningful with one writer: where writers run at once (``Dialect.part_lock``), a
    report may be committing while this reads, so every part looks for its own.
    """
    if c.dialect.part_lock:
        return True
    return c.execute("SELECT 1 FROM early_reports LIMIT 1").fetchone() is not None


def lock_part(c: Conn, connector: str, provider_id: str) -> None:
    """Take the carrier id's lock (``Dialect.part_lock``) until the transaction ends."""
    if c.dialect.part_lock:
        c.execute(c.dialect.part_lock, (connector, provider_id))


def lock_parts(c: Conn, keys: Iterable[tuple[str, str]]) -> None:
    """Take the locks of many (connector, provider id) at once (``Dialect.part_locks``)."""
    if c.dialect.part_locks:
        flat = sorted({f"{conn}/{pid}" for conn, pid in keys})
        if flat:
            c.execute(c.dialect.part_locks, (flat,))
    else:
        for conn, pid in sorted(set(keys)):
            lock_part(c, conn, pid)


def record_parts(
    c: Conn,
    message_id: str,
    connector: str,
    provider_ids: Sequence[str],
    now: int,
    *,
    look_early: bool = True,
    locked: bool = False,
) -> list[StatusChange]:
    """Remember each part's carrier id; returns reports that had arrived before this.

    ``look_early`` False: the caller knows no early report is waiting (``any_early_reports``).
    ``locked``: the caller holds the parts' locks already (``lock_parts``).
    """
    if not locked:
        for pid in sorted(provider_ids):  # one order everywhere: no deadlock between two parts
            lock_part(c, connector, pid)
    c.executemany(
        "INSERT INTO message_parts (connector, provider_message_id, message_id, part, status) "
        "VALUES (?, ?, ?, ?, NULL) ON CONFLICT (connector, provider_message_id) DO UPDATE SET "
        "message_id = excluded.message_id, part = excluded.part, status = NULL",
        [(connector, pid, message_id, i) for i, pid in enumerate(provider_ids)],
    )
    early: list[StatusChange] = []
    if not look_early:
        return early
    for pid in provider_ids:
        row = c.execute(
            "SELECT status, error_code, detail, at FROM early_reports "
            "WHERE connector = ? AND provider_message_id = ?",
            (connector, pid),
        ).fetchone()
        if row is not None:
            c.execute(
                "DELETE FROM early_reports WHERE connector = ? AND provider_message_id = ?",
                (connector, pid),
            )
            early.append(
                StatusChange(
                    message_id,
                    row[0],
                    error_code=row[1],
                    detail=row[2],
                    at=row[3],
                    provider_part=pid,
                )
            )
    return early


# The sibling count filters the connector outside the index condition: a planner without
# fresh statistics would otherwise AND in the primary key's connector prefix (every part).
_REPORT_SELECT = (
    "SELECT p.message_id, p.part, (SELECT COUNT(*) FILTER (WHERE o.connector = p.connector) "
    "FROM message_parts o WHERE o.message_id = p.message_id), "
    + ", ".join(f"m.{col}" for col in MESSAGE_COLUMNS)
    + " FROM message_parts p JOIN messages m ON m.id = p.message_id "
    "WHERE p.connector = ? AND p.provider_message_id = ?"
)


def report(
    c: Conn,
    connector: str,
    provider_id: str,
    change: StatusChange,
    now: int,
    ctx: OpContext | None = None,
) -> MessageRow | None:
    """Apply a delivery report for one part; the message settles when all parts have."""
    lock_part(c, connector, provider_id)
    row = c.execute(_REPORT_SELECT + c.dialect.for_update_of_m, (connector, provider_id)).fetchone()
    if row is None:
        c.execute(
            "INSERT INTO early_reports (connector, provider_message_id, status, error_code, "
            "detail, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (connector, provider_message_id) "
            "DO UPDATE SET status = excluded.status, error_code = excluded.error_code, "
            "detail = excluded.detail, at = excluded.at",
            (
                connector,
                provider_id,
                change.status,
                change.error_code,
                change.detail,
                change.at or now,
            ),
        )
        return None
    message_id = row[0]
    if row[2] == 1:
        # A single-part message (the common case) settles with its only report: its part's
        # status is never read again, so neither that update nor the sibling scan is needed,
        # and the message's columns came with the part.
        return apply_change(c, replace(change, message_id=message_id), now, ctx, row[3:])
    c.execute(
        "UPDATE message_parts SET status = ? WHERE connector = ? AND provider_message_id = ?",
        (change.status, connector, provider_id),
    )
    statuses = [
        r[0]
        for r in c.execute(
            "SELECT status FROM message_parts WHERE message_id = ? AND connector = ?",
            (message_id, connector),
        )
    ]
    if any(s is None for s in statuses):
        return None  # other parts still outstanding
    worst = next((s for s in statuses if s != Status.DELIVERED.value), Status.DELIVERED.value)
    change = replace(change, message_id=message_id)
    if worst != change.status:
        change = replace(change, status=worst, error_code=change.error_code or worst)
    return apply_change(c, change, now, ctx)


_INSERT_PARTS = (
    "INSERT INTO message_parts (connector, provider_message_id, message_id, part, status) "
    "VALUES (?, ?, ?, ?, NULL) ON CONFLICT (connector, provider_message_id) DO UPDATE SET "
    "message_id = excluded.message_id, part = excluded.part, status = NULL"
)


_INSERT_PARTS_UNNEST = (
    "INSERT INTO message_parts (connector, provider_message_id, message_id, part, status) "
    "SELECT c, p, m, n, NULL FROM "
    + unnest(["text", "text", "text", "integer"])
    + " AS v(c, p, m, n) "
    "ON CONFLICT (connector, provider_message_id) DO UPDATE SET "
    "message_id = excluded.message_id, part = excluded.part, status = NULL"
)


def insert_parts(c: Conn, messages: Sequence[tuple[str, str, Sequence[str]]]) -> None:
    """Record the carrier ids of many messages, (connector, message id, provider ids) each,
    in one statement; a carrier id given twice keeps its last message (as one at a time)."""
    latest: dict[tuple[str, str], tuple[str, str, str, int]] = {}
    for connector, message_id, provider_ids in messages:
        for i, pid in enumerate(provider_ids):
            latest.pop((connector, pid), None)
            latest[(connector, pid)] = (connector, pid, message_id, i)
    rows = list(latest.values())
    if not rows:
        return
    if c.dialect.server:
        c.execute(_INSERT_PARTS_UNNEST, columns(rows, 4))
    else:
        c.executemany(_INSERT_PARTS, rows)


_REPORT_KEYS = "SELECT p.connector, p.provider_message_id, p.message_id,"


def _pairs_in(n: int) -> str:
    return "(" + ", ".join(["(?, ?)"] * n) + ")"


def preload_messages(c: Conn, ids: Sequence[str]) -> dict[str, tuple[object, ...]]:
    """The columns of many messages in one statement, locked (``Dialect.for_update``)."""
    out: dict[str, tuple[object, ...]] = {}
    for among, args in in_lists(c, sorted(set(ids)), size=1000):
        for row in c.execute(f"{_SELECT} WHERE id {among} ORDER BY id{c.dialect.for_update}", args):
            out[str(row[0])] = tuple(row)
    return out


def take_early_reports(c: Conn, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Delete and return the early reports waiting for any of ``keys`` (one statement), as
    (status, error_code, detail, at) by (connector, provider id)."""
    out: dict[tuple[str, str], Any] = {}
    for i in range(0, len(keys), 1000):
        chunk = keys[i : i + 1000]
        args: list[Any]
        if c.dialect.server:
            pairs = f"(SELECT * FROM {unnest(['text', 'text'])})"
            args = columns(chunk, 2)
        else:
            pairs, args = _pairs_in(len(chunk)), [v for k in chunk for v in k]
        rows = c.execute(
            f"DELETE FROM early_reports WHERE (connector, provider_message_id) IN {pairs} "
            "RETURNING connector, provider_message_id, status, error_code, detail, at",
            args,
        ).fetchall()
        for r in rows:
            out[(str(r[0]), str(r[1]))] = tuple(r[2:])
    return out


def report_batch(
    c: Conn, reports: Sequence[tuple[str, str, StatusChange]], now: int, ctx: OpContext
) -> list[MessageRow | None]:
    """:func:`report` for many parts with a few statements for the lot: every part's lock at
    once (a server's dialect), then single-part messages read with their parts in one
    statement, their updates written together (``OpContext.flush_updates``). Anything else (an
    unknown id, a multi-part message, a message reported twice in the batch) takes the
    one-at-a-time path, under the locks already held."""
    keys = [(conn, pid) for conn, pid, _ in reports]
    lock_parts(c, keys)
    found: dict[tuple[str, str], tuple[object, ...]] = {}
    by_connector: dict[str, set[str]] = {}
    for conn, pid in keys:
        by_connector.setdefault(conn, set()).add(pid)
    keyed = _REPORT_SELECT.replace("SELECT p.message_id,", _REPORT_KEYS, 1)
    if c.dialect.server:
        # unnest and LATERAL: one exact primary-key probe per carrier id whatever the
        # planner's statistics say (OFFSET 0 keeps the probe from being flattened into a join
        # that a fresh, not yet analyzed table would plan as a scan of every part).
        sql = (
            "SELECT x.* FROM unnest(?::text[]) AS k(pid) CROSS JOIN LATERAL ("
            + keyed.replace("p.provider_message_id = ?", "p.provider_message_id = k.pid")
            + f" OFFSET 0{c.dialect.for_update_of_m}) x"
        )
        for conn, pids in by_connector.items():
            for r in c.execute(sql, (sorted(pids), conn)):
                found[(str(r[0]), str(r[1]))] = tuple(r[2:])
    else:  # SQLite probes the (connector, provider id) key once per value of the IN list
        for conn, pids in by_connector.items():
            for among, args in in_lists(c, sorted(pids)):
                sql = keyed.replace("p.provider_message_id = ?", f"p.provider_message_id {among}")
                for r in c.execute(sql, (conn, *args)):
                    found[(str(r[0]), str(r[1]))] = tuple(r[2:])
    seen: set[str] = set()
    out: list[MessageRow | None] = []
    for conn, pid, change in reports:
        row = found.get((conn, pid))
        if row is None or row[2] != 1 or row[0] in seen:
            ctx.flush_updates(c)  # the one-at-a-time path reads the messages
            out.append(report(c, conn, pid, change, now, ctx))
            if row is not None:
                seen.add(str(row[0]))
            continue
        seen.add(str(row[0]))
        change = replace(change, message_id=str(row[0]))
        out.append(apply_change(c, change, now, ctx, row[3:], defer=True))
    return out


def sweep(
    c: Conn,
    now: int,
    limit: int = 5000,
    *,
    owner: str | None = None,
    alone: bool = False,
    dead_after_ms: int = DEAD_AFTER_MS,
) -> dict[str, list[MessageRow]]:
    """Time-driven moves: release due scheduled messages, expire what outlived its validity,
    and return orphaned claims (their dispatcher died) to the queue.

    ``owner`` is the sweeping dispatcher; ``alone`` says no other dispatcher can be running
    (the embedded store's dispatcher lock), so every claim but its own is an orphan.
    """
    out: dict[str, list[MessageRow]] = {"released": [], "expired": [], "reclaimed": []}
    due = [
        r[0]
        for r in c.execute(
            "SELECT id FROM messages WHERE status = 'scheduled' AND schedule_at <= ? LIMIT ?",
            (now, limit),
        )
    ]
    for mid in due:
        m = apply_change(
            c,
            StatusChange(
                mid, Status.QUEUED.value, detail="schedule reached", fields={"next_attempt_at": now}
            ),
            now,
        )
        if m:
            out["released"].append(m)
    # A sent message whose report never came expires at validity end (its index holds only
    # sent messages). Queued messages past validity are expired by the dispatcher when claimed,
    # with a refund, so the accept path needs no extra index for them.
    stale = [
        (r[0], False)
        for r in c.execute(
            "SELECT id FROM messages WHERE status = 'sent' AND expires_at <= ? LIMIT ?",
            (now, limit),
        )
    ]
    for mid, refund in stale:
        change = StatusChange(
            mid,
            Status.EXPIRED.value,
            error_code="expired",
            detail="validity period ended",
            refund=refund,
        )
        m = apply_change(c, change, now)
        if m:
            out["expired"].append(m)
    # Orphans: claims whose owner is gone (no heartbeat for DEAD_AFTER_MS, or unregistered),
    # or, for a dispatcher that knows it is alone (the embedded store's lock), any claim not
    # its own. A live owner's claim is never taken, however long its send takes. Claims of
    # no owner (written before owners existed) return when their lease runs out.
    live_since = now - dead_after_ms
    c.execute("DELETE FROM dispatchers WHERE heartbeat_at < ?", (live_since,))
    if alone:
        orphan = "(lease_owner IS NULL OR lease_owner <> ?)"
        args: tuple[object, ...] = (owner or "",)
    else:
        orphan = (
            "(lease_owner IS NULL AND lease_until <= ? OR lease_owner IS NOT NULL AND "
            "lease_owner NOT IN (SELECT id FROM dispatchers))"
        )
        args = (now,)
    leased = [
        r[0]
        for r in c.execute(
            "SELECT id FROM messages WHERE status = 'sending' AND lease_until IS NOT NULL "
            f"AND {orphan} LIMIT ?{c.dialect.skip_locked}",
            (*args, limit),
        )
    ]
    for mid in leased:
        m = apply_change(
            c,
            StatusChange(
                mid,
                Status.SENDING.value,  # back in the queue, without moving its status back
                detail="retry: the process sending it stopped",
                fields={"next_attempt_at": now, "lease_until": None},
            ),
            now,
        )
        if m:
            out["reclaimed"].append(m)
    return out


# "No older pending event of the same message" (not "= the MIN(id)"): the planner walks the due
# index in order and stops at ``limit``, one probe of the message index per row, kept a probe
# by ``Dialect.per_row`` (as a join, a fresh table's plan walked every pending event for each
# row: 17 ms a claim with 3,000 pending). Two dispatchers never claim the same event
# (``skip_locked``, appended).
CLAIM_WEBHOOKS = (
    "SELECT w.id, w.event_id, w.account_id, w.message_id, w.url, w.payload, w.attempts, "
    "w.created_at FROM webhook_events w WHERE w.status = 'pending' AND w.next_attempt_at <= ? "
    "AND NOT EXISTS (SELECT 1 FROM webhook_events o WHERE o.message_id = w.message_id "
    "AND o.id < w.id AND o.status = 'pending'{per_row}) ORDER BY w.next_attempt_at LIMIT ?"
)


def claim_webhooks(c: Conn, now: int, limit: int, lease_ms: int) -> list[tuple[Any, ...]]:
    """Due webhook events, at most one per message (the oldest), leased while being sent."""
    sql = CLAIM_WEBHOOKS.format(per_row=c.dialect.per_row) + c.dialect.skip_locked
    rows = c.execute(sql, (now, limit)).fetchall()
    if rows:
        among, args = in_list(c, [r[0] for r in rows], "integer")
        c.execute(
            f"UPDATE webhook_events SET next_attempt_at = ? WHERE id {among}",
            (now + lease_ms, *args),
        )
    return rows
