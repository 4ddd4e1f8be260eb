"""The store on a relational database: accounts, keys and messages, in SQL both backends share.

:class:`SqlStore` is :class:`dakghar.store.base.Store` minus the connections: a backend
(``store.sqlite``, ``store.postgres``) supplies ``_write`` (one operation inside its group
commit), ``_read`` (on a reader connection) and the rest of the lifecycle (open, close, ping).
The pipeline, OTP and retention halves are mixins of the same shape (``store.sql.*``).
"""

from __future__ import annotations

import asyncio
import operator
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from dakghar.core.ids import new_id
from dakghar.core.message import CANCELABLE, Status, can_transition
from dakghar.errors import Conflict, NotFound, SendingPaused
from dakghar.settings import StoreSettings
from dakghar.store.base import (
    MESSAGE_COLUMNS,
    AcceptOutcome,
    Account,
    ApiKey,
    IdempotencyRecord,
    MessageEvent,
    MessageFilter,
    MessageRow,
    ResponseRenderer,
    history,
    new_webhook_secret,
    now_ms,
)
from dakghar.store.sql import Conn, column_types, columns, in_list, unnest
from dakghar.store.sql.campaigns import CampaignStoreMixin
from dakghar.store.sql.compliance import ComplianceStoreMixin
from dakghar.store.sql.otp import OtpStoreMixin
from dakghar.store.sql.pipeline import PipelineStoreMixin
from dakghar.store.sql.retention import RetentionStoreMixin
from dakghar.store.sql.writer import GroupCommitWriter

T = TypeVar("T")

_ACCOUNT_DEFAULTS: dict[str, Any] = {
    "balance_milli": 0,
    "price_milli_per_segment": 1000,
    "default_region": "IN",
    "default_sender": None,
    "allowed_countries": None,
    "segment_limit": 10,
    "callback_url": None,
    "rate_per_second": 200,
    "rate_burst": 400,
    "smart_encoding": False,
    "dlt_enforced": False,
    "sending_paused": False,
    "retention_days": 30,
    "webhook_events": "final",
    "inbound_url": None,
    "previous_webhook_secret": None,
    "previous_secret_expires_at": None,
}
_ACCOUNT_FIELDS = tuple(Account.__dataclass_fields__)
_INSERT_MESSAGE = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in MESSAGE_COLUMNS)})"
)
_SELECT_MESSAGE = f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages"
_IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
_message_values = operator.attrgetter(*MESSAGE_COLUMNS)
_INSERT_UNNEST = f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) SELECT * FROM " + unnest(
    [column_types("messages")[k] for k in MESSAGE_COLUMNS]
)


class AccountGone(NotFound):
    """The account vanished between authentication and write."""


class NotCancelable(Conflict):
    """Only scheduled or queued messages can be canceled: API.md's ``conflict`` (409)."""


_INSERT_CHUNK = 5000  # rows per statement on a server (arrays: one statement text for any count)


def _insert_messages_batched(
    c: Conn, rows: Sequence[MessageRow], debits: Sequence[tuple[str, int]]
) -> None:
    """Insert ``rows`` and set the accounts' new balances (``debits``: account id, balance).

    On a server, in the first statement: one round trip instead of an UPDATE and an INSERT.
    Many rows (or accounts) go as one array per column, one statement text whatever their
    number, so the server runs it prepared; a single one keeps the plain text, which is cheaper
    to send. On SQLite (in process, no round trips to save), one prepared UPDATE run for every
    account and one prepared INSERT run for every row."""
    if not c.dialect.server:
        if debits:
            c.executemany(
                "UPDATE accounts SET balance_milli = ? WHERE id = ?", [(b, k) for k, b in debits]
            )
        if rows:
            c.executemany(_INSERT_MESSAGE, map(_message_values, rows))
        return
    chunks = [rows[i : i + _INSERT_CHUNK] for i in range(0, len(rows), _INSERT_CHUNK)]
    debit_sql = ""
    debit_params: list[Any] = []
    if len(debits) == 1:
        debit_sql = "UPDATE accounts SET balance_milli = ? WHERE id = ?"
        debit_params = [debits[0][1], debits[0][0]]
    elif debits:
        debit_sql = (
            "UPDATE accounts AS a SET balance_milli = v.b FROM "
            + unnest(["text", "bigint"])
            + " AS v(id, b) WHERE a.id = v.id"
        )
        debit_params = columns(debits, 2)
    if not chunks and debit_sql:
        c.execute(debit_sql, debit_params)
    for n, chunk in enumerate(chunks):
        params: list[Any] = []
        sql = _INSERT_UNNEST if len(chunk) > 1 else _INSERT_MESSAGE
        if n == 0 and debit_sql:
            sql = f"WITH debit AS ({debit_sql}) {sql}"
            params += debit_params
        if len(chunk) > 1:
            params += columns([_message_values(m) for m in chunk], len(MESSAGE_COLUMNS))
        else:
            params += _message_values(chunk[0])
        c.execute(sql, params)


def _message(row: tuple[Any, ...]) -> MessageRow:
    m = MessageRow(*row)
    m.sandbox = bool(m.sandbox)
    return m


def _account(row: tuple[Any, ...]) -> Account:
    a = Account(*row)
    a.smart_encoding, a.dlt_enforced, a.sending_paused = (
        bool(a.smart_encoding),
        bool(a.dlt_enforced),
        bool(a.sending_paused),
    )
    return a


# The account row with the kill switches, read (and locked) in the accept's transaction: a
# switch flipped by any process holds for the next accept, not after a cache refresh.
_ACCOUNT_FOR_ACCEPT = (
    "balance_milli, sending_paused, EXISTS (SELECT 1 FROM switches WHERE scope = 'global' "
    "AND paused = TRUE) FROM accounts"
)


class _Accept:
    """One request's accept as a group-commit operation: check the account, debit, insert.

    On a server, the writer runs all the accepts of a batch at once (``together``): one
    statement reads and locks every account of the batch and one writes every message and
    balance, where one at a time each accept waits for its own round trip to the account row.
    """

    __slots__ = ("account_id", "charge", "messages")

    def __init__(self, account_id: str, messages: Sequence[MessageRow], charge: bool) -> None:
        self.account_id = account_id
        self.messages = messages
        self.charge = charge

    def settle(self, acc: tuple[Any, ...] | None, balance: int | None = None) -> AcceptOutcome:
        """What this request accepts, given its account row (None: gone) and the balance left
        by the batch's earlier accepts of the same account; raises a refusal."""
        if acc is None:
            raise AccountGone("account not found")
        if acc[2]:
            raise SendingPaused.everyone()
        if acc[1]:
            raise SendingPaused.account()
        left = int(acc[0]) if balance is None else balance
        accepted: list[MessageRow] = []
        no_credit: list[int] = []
        for i, m in enumerate(self.messages):
            if self.charge and m.price_milli > left:
                no_credit.append(i)
                continue
            if self.charge:
                left -= m.price_milli
            accepted.append(m)
        return AcceptOutcome(accepted, no_credit, left)

    def __call__(self, c: Conn) -> AcceptOutcome:
        acc = c.execute(
            f"SELECT {_ACCOUNT_FOR_ACCEPT} WHERE id = ?{c.dialect.for_update}", (self.account_id,)
        ).fetchone()
        outcome = self.settle(acc)
        charged = self.charge and outcome.accepted
        debits = [(self.account_id, outcome.balance_milli)] if charged else []
        _insert_messages_batched(c, outcome.accepted, debits)
        return outcome

    @staticmethod
    def together(c: Conn, batch: Sequence[_Accept]) -> list[tuple[Any, BaseException | None]]:
        """Every accept of a batch at once: on a server in two statements (the optimistic
        pass); on SQLite one read of the accounts, one prepared insert run for every message
        and an update per account charged (``GroupCommitWriter``'s careful pass, for a run of
        accepts, inside one savepoint)."""
        if len(batch) == 1:
            try:
                return [(batch[0](c), None)]
            except (AccountGone, SendingPaused) as refused:
                return [(None, refused)]
        ids = sorted({a.account_id for a in batch})  # one lock order: no deadlock
        among, args = in_list(c, ids)
        rows = {
            str(r[0]): tuple(r[1:])
            for r in c.execute(
                f"SELECT id, {_ACCOUNT_FOR_ACCEPT} WHERE id {among} ORDER BY id"
                + c.dialect.for_update,
                args,
            )
        }
        balances: dict[str, int] = {}
        charged: set[str] = set()
        outcomes: list[tuple[Any, BaseException | None]] = []
        accepted: list[MessageRow] = []
        for a in batch:
            try:
                outcome = a.settle(rows.get(a.account_id), balances.get(a.account_id))
            except (AccountGone, SendingPaused) as refused:
                outcomes.append((None, refused))
                continue
            balances[a.account_id] = outcome.balance_milli
            if a.charge and outcome.accepted:
                charged.add(a.account_id)
            accepted += outcome.accepted
            outcomes.append((outcome, None))
        # Debits come only with accepted messages.
        _insert_messages_batched(c, accepted, [(k, balances[k]) for k in sorted(charged)])
        return outcomes


class SqlStore(
    PipelineStoreMixin, OtpStoreMixin, RetentionStoreMixin, ComplianceStoreMixin, CampaignStoreMixin
):
    """Accounts, keys and messages on a DB-API connection, and what both backends do alike
    with their connections: one group-commit writer, a pool of reader threads each with its own
    connection. A backend supplies ``open`` (migrate, start the writer), ``_reader`` (this
    thread's read connection) and the errors its driver raises (``_driver_errors``)."""

    _driver_errors: tuple[type[Exception], ...] = ()

    def __init__(self, settings: StoreSettings | None, *, readers: str) -> None:
        self.settings = settings or StoreSettings()
        self._writer: GroupCommitWriter | None = None
        # A second writer for what must not wait behind the bulk (claims of the OTP lane), on
        # a server, where writers of one database run at once; None: everything takes one.
        self._express: GroupCommitWriter | None = None
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix=readers)

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer (for statistics)."""
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    def write_stats(self) -> dict[str, float]:
        """The writer's totals: commits, operations, and seconds waiting for the write lock
        (another process's transaction, on SQLite) and inside transactions."""
        w = self._writer
        if w is None:
            return {}
        return {
            "commits": w.commits,
            "operations": w.operations,
            "lock_wait_seconds": round(w.lock_wait_seconds, 3),
            "busy_seconds": round(w.busy_seconds, 3),
        }

    async def _write(self, op: Callable[[Conn], T], *, express: bool = False) -> T:
        """Run ``op`` in the next group commit; with ``express``, in the express writer's when
        there is one (a batch of the bulk writer can take 100 ms under load), else committed
        ahead of its batch (``GroupCommitWriter.submit(urgent=True)``)."""
        if express and self._express is not None:
            return await self._express.submit(op)
        return await self.writer.submit(op, urgent=express)

    def _reader(self) -> Conn:
        """This reader thread's connection (opened on first use)."""
        raise NotImplementedError

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    async def close(self) -> None:
        """Drain the writer and stop the reader threads."""
        for writer in (self._express, self._writer):
            if writer is not None:
                await asyncio.get_running_loop().run_in_executor(None, writer.stop)
        self._writer = self._express = None
        self._readers.shutdown(wait=True)

    async def ping(self) -> bool:
        """True when a read succeeds and the writer thread is alive."""
        try:
            await self._read(lambda c: c.execute("SELECT 1").fetchone())
        except self._driver_errors:
            return False
        return self._writer is not None

    # -- accounts and keys -------------------------------------------------------------------

    async def create_account(self, **fields: Any) -> Account:
        """Create an account; unspecified fields take the defaults."""
        unknown = set(fields) - set(_ACCOUNT_FIELDS)
        if unknown:
            raise TypeError(f"unknown account fields: {sorted(unknown)}")
        values = {**_ACCOUNT_DEFAULTS, **fields}
        values.setdefault("id", new_id("acc"))
        values.setdefault("webhook_secret", new_webhook_secret())
        values.setdefault("created_at", now_ms())
        account = Account(**{k: values[k] for k in _ACCOUNT_FIELDS})
        cols = ", ".join(_ACCOUNT_FIELDS)
        sql = f"INSERT INTO accounts ({cols}) VALUES ({', '.join('?' for _ in _ACCOUNT_FIELDS)})"
        await self._write(lambda c: c.execute(sql, [getattr(account, f) for f in _ACCOUNT_FIELDS]))
        return account

    async def get_account(self, account_id: str) -> Account | None:
        """An account by id."""
        sql = f"SELECT {', '.join(_ACCOUNT_FIELDS)} FROM accounts WHERE id = ?"
        row = await self._read(lambda c: c.execute(sql, (account_id,)).fetchone())
        return _account(row) if row else None

    async def accounts_below(self, balance_milli: int, limit: int = 100) -> list[Account]:
        """Accounts whose balance is under ``balance_milli`` (the low-credits alert)."""
        sql = (
            f"SELECT {', '.join(_ACCOUNT_FIELDS)} FROM accounts WHERE balance_milli < ? "
            "ORDER BY balance_milli LIMIT ?"
        )
        rows = await self._read(lambda c: c.execute(sql, (balance_milli, limit)).fetchall())
        return [_account(r) for r in rows]

    async def list_accounts(self, limit: int = 1000) -> list[Account]:
        """Accounts, oldest first."""
        sql = f"SELECT {', '.join(_ACCOUNT_FIELDS)} FROM accounts ORDER BY created_at, id LIMIT ?"
        rows = await self._read(lambda c: c.execute(sql, (limit,)).fetchall())
        return [_account(r) for r in rows]

    async def find_account_by_name(self, name: str) -> Account | None:
        """The oldest account named ``name``."""
        sql = (
            f"SELECT {', '.join(_ACCOUNT_FIELDS)} FROM accounts WHERE name = ? "
            "ORDER BY created_at, id LIMIT 1"
        )
        row = await self._read(lambda c: c.execute(sql, (name,)).fetchone())
        return _account(row) if row else None

    async def update_account(self, account_id: str, **fields: Any) -> Account | None:
        """Change account settings."""
        allowed = set(_ACCOUNT_FIELDS) - {"id", "created_at"}
        if set(fields) - allowed:
            raise TypeError(f"cannot update: {sorted(set(fields) - allowed)}")
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            params = [*fields.values(), account_id]
            await self._write(
                lambda c: c.execute(f"UPDATE accounts SET {sets} WHERE id = ?", params)
            )
        return await self.get_account(account_id)

    async def create_api_key(self, key: ApiKey) -> None:
        """Store a hashed key."""
        await self._write(
            lambda c: c.execute(
                "INSERT INTO api_keys (id, account_id, mode, key_hash, name, created_at, "
                "revoked_at, scopes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.id,
                    key.account_id,
                    key.mode,
                    key.key_hash,
                    key.name,
                    key.created_at,
                    None,
                    key.scopes,
                ),
            )
        )

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """A key by lookup id."""
        sql = (
            "SELECT id, account_id, mode, key_hash, name, created_at, revoked_at, scopes "
            "FROM api_keys WHERE id = ?"
        )
        row = await self._read(lambda c: c.execute(sql, (key_id,)).fetchone())
        return ApiKey(*row) if row else None

    async def list_api_keys(self, account_id: str) -> list[ApiKey]:
        """An account's keys."""
        sql = (
            "SELECT id, account_id, mode, key_hash, name, created_at, revoked_at, scopes "
            "FROM api_keys WHERE account_id = ? ORDER BY created_at"
        )
        rows = await self._read(lambda c: c.execute(sql, (account_id,)).fetchall())
        return [ApiKey(*r) for r in rows]

    async def revoke_api_key(self, account_id: str, key_id: str) -> bool:
        """Revoke a key of the account."""

        def op(c: Conn) -> bool:
            cur = c.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? "
                "AND revoked_at IS NULL",
                (now_ms(), key_id, account_id),
            )
            return cur.rowcount == 1

        return await self._write(op)

    # -- messages ----------------------------------------------------------------------------

    async def get_idempotency(self, account_id: str, key: str) -> IdempotencyRecord | None:
        """A stored response younger than 24 h."""
        sql = (
            "SELECT request_hash, status_code, response FROM idempotency_keys "
            "WHERE account_id = ? AND key = ? AND created_at > ?"
        )
        cutoff = now_ms() - _IDEMPOTENCY_TTL_MS
        row = await self._read(lambda c: c.execute(sql, (account_id, key, cutoff)).fetchone())
        return IdempotencyRecord(*row) if row else None

    async def accept_messages(
        self,
        account_id: str,
        messages: Sequence[MessageRow],
        *,
        charge: bool,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        render: ResponseRenderer | None = None,
    ) -> AcceptOutcome:
        """Write messages and their first events, debiting in one savepoint."""
        accept = _Accept(account_id, messages, charge)
        if idempotency_key is None or request_hash is None or render is None:
            return await self._write(accept)

        def op(c: Conn) -> AcceptOutcome:
            row = c.execute(
                "SELECT request_hash, status_code, response, created_at FROM idempotency_keys "
                "WHERE account_id = ? AND key = ?",
                (account_id, idempotency_key),
            ).fetchone()
            now = now_ms()
            if row and row[3] > now - _IDEMPOTENCY_TTL_MS:
                return AcceptOutcome([], [], 0, replay=IdempotencyRecord(*row[:3]))
            if row:  # expired: the key may be used afresh
                c.execute(
                    "DELETE FROM idempotency_keys WHERE account_id = ? AND key = ?",
                    (account_id, idempotency_key),
                )
            outcome = accept(c)
            rendered = render(outcome)
            if rendered is None:  # nothing to store for a replay (a refusal)
                return outcome
            status_code, body = rendered
            c.execute(
                "INSERT INTO idempotency_keys (account_id, key, request_hash, status_code, "
                "response, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (account_id, idempotency_key, request_hash, status_code, body, now),
            )
            outcome.response = IdempotencyRecord(request_hash, status_code, body)
            return outcome

        return await self._write(op)

    async def get_message(
        self, account_id: str, message_id: str, *, with_events: bool = False
    ) -> MessageRow | None:
        """One message of the account, optionally with its event history."""

        def fn(c: Conn) -> MessageRow | None:
            row = c.execute(
                f"{_SELECT_MESSAGE} WHERE id = ? AND account_id = ?", (message_id, account_id)
            ).fetchone()
            if row is None:
                return None
            msg = _message(row)
            if with_events:
                stored = [
                    MessageEvent(*e)
                    for e in c.execute(
                        "SELECT status, at, detail FROM message_events WHERE message_id = ? "
                        "ORDER BY id",
                        (message_id,),
                    )
                ]
                msg.events = history(msg, stored)
            return msg

        return await self._read(fn)

    async def list_messages(
        self, account_id: str, flt: MessageFilter, *, limit: int, after_id: str | None
    ) -> list[MessageRow]:
        """Newest first, keyset-paged on the time-ordered id."""
        where = ["account_id = ?"]
        params: list[Any] = [account_id]
        for clause, value in (
            ("status = ?", flt.status),
            ("to_number = ?", flt.to_number),
            ("reference = ?", flt.reference),
            ("created_at >= ?", flt.since),
            ("created_at < ?", flt.until),
            ("id < ?", after_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"{_SELECT_MESSAGE} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [_message(r) for r in rows]

    async def cancel_message(self, account_id: str, message_id: str) -> MessageRow:
        """Cancel while scheduled or queued, refunding what was charged."""

        def op(c: Conn) -> None:
            row = c.execute(
                "SELECT status, price_milli FROM messages WHERE id = ? AND account_id = ?"
                + c.dialect.for_update,
                (message_id, account_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"no message {message_id}")
            if Status(row[0]) not in CANCELABLE:
                raise NotCancelable(
                    f"message is {row[0]}; only scheduled or queued can be canceled"
                )
            now = now_ms()
            c.execute(
                "UPDATE messages SET status = ?, error_code = ?, updated_at = ? WHERE id = ?",
                (Status.CANCELED.value, "canceled", now, message_id),
            )
            c.execute(
                "INSERT INTO message_events (message_id, status, at, detail) VALUES (?, ?, ?, ?)",
                (message_id, Status.CANCELED.value, now, "canceled by API"),
            )
            if row[1]:
                c.execute(
                    "UPDATE accounts SET balance_milli = balance_milli + ? WHERE id = ?",
                    (row[1], account_id),
                )

        await self._write(op)
        msg = await self.get_message(account_id, message_id)
        assert msg is not None
        return msg

    async def transition(
        self,
        message_id: str,
        status: str,
        *,
        detail: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> MessageRow | None:
        """Apply a lifecycle move atomically with its event, if allowed."""
        new = Status(status)
        extra = dict(fields or {})
        if set(extra) - set(MESSAGE_COLUMNS):
            raise TypeError(f"unknown message fields: {sorted(set(extra) - set(MESSAGE_COLUMNS))}")

        def op(c: Conn) -> bool:
            row = c.execute(
                "SELECT status FROM messages WHERE id = ?" + c.dialect.for_update, (message_id,)
            ).fetchone()
            if row is None or not can_transition(Status(row[0]), new):
                return False
            now = now_ms()
            values = {**extra, "status": new.value, "updated_at": now}
            sets = ", ".join(f"{k} = ?" for k in values)
            c.execute(f"UPDATE messages SET {sets} WHERE id = ?", [*values.values(), message_id])
            c.execute(
                "INSERT INTO message_events (message_id, status, at, detail) VALUES (?, ?, ?, ?)",
                (message_id, new.value, now, detail),
            )
            return True

        if not await self._write(op):
            return None
        row = await self._read(
            lambda c: c.execute(f"{_SELECT_MESSAGE} WHERE id = ?", (message_id,)).fetchone()
        )
        return _message(row) if row else None
