"""The scale-out store: PostgreSQL, shared by every process of a fleet.

The same SQL as the embedded store (``store/sql``) runs here through psycopg 3, on the same
group-commit writer: one writer thread per process, one transaction per batch, a savepoint per
operation. PostgreSQL lets the writers of many processes run at once, so the shared SQL takes
row locks where it reads before it writes (``Dialect.for_update``), claims skip rows another
dispatcher is claiming (``FOR UPDATE SKIP LOCKED``), and an operation that loses a deadlock is
run again. Reads go to a small pool of threads, each with its own autocommit connection.

Why psycopg 3 and not asyncpg: the lifecycle SQL is written once, as functions of a DB-API
connection, and runs unchanged on SQLite's writer thread and here; asyncpg would need a second,
async copy of every move. psycopg's C implementation prepares repeated statements and pipelines
``executemany``, and the writer thread releases the GIL while it waits on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import create_engine, text

from dakghar.settings import StoreSettings
from dakghar.store import migrate
from dakghar.store.sql import POSTGRESQL, Dialect
from dakghar.store.sql.core import SqlStore
from dakghar.store.sql.writer import GroupCommitWriter

T = TypeVar("T")

# One key for the advisory lock that serializes migrations across the fleet.
_MIGRATE_LOCK = 0x64616B6768617201  # "dakghar" + 1

_translated: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    """The shared SQL's ``?`` placeholders in psycopg's ``%s`` style (cached per statement)."""
    out = _translated.get(sql)
    if out is None:
        out = sql.replace("%", "%%").replace("?", "%s")
        if len(_translated) < 10_000:
            _translated[sql] = out
    return out


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database."""
    return url.startswith(("postgresql://", "postgres://"))


def _conninfo(url: str) -> str:
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


class _PipelinedCursor:
    """A cursor of pipeline mode: rows are fetched when read (psycopg waits for them); the
    count of changed rows, which psycopg only knows once the results are in, syncs first."""

    __slots__ = ("_cur", "_pipe")

    def __init__(self, cur: psycopg.Cursor[Any], pipe: psycopg.Pipeline) -> None:
        self._cur = cur
        self._pipe = pipe

    @property
    def rowcount(self) -> int:
        """Rows changed by the statement (waits for its result)."""
        if self._cur.pgresult is None:
            self._pipe.sync()
        return self._cur.rowcount

    def fetchone(self) -> Any:
        """The next row (waits for the result)."""
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        """The remaining rows (waits for the result)."""
        return self._cur.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur)


class PgConnection:
    """A psycopg connection with the shape of :class:`dakghar.store.sql.Conn`."""

    dialect: Dialect = POSTGRESQL

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self._trace: Callable[[str], None] | None = None
        self._pipe: psycopg.Pipeline | None = None

    @contextlib.contextmanager
    def pipelined(self) -> Iterator[None]:
        """Pipeline mode for the block: statements go out without waiting for their results,
        so a run of writes is one round trip; an error surfaces at a later statement or at the
        end of the block (the group-commit writer then runs the batch again the careful way)."""
        with self.raw.pipeline() as pipe:
            self._pipe = pipe
            try:
                yield
            finally:
                self._pipe = None

    def set_trace_callback(self, trace: Callable[[str], None] | None) -> None:
        """Call ``trace`` with every statement (statement counts for benchmarks)."""
        self._trace = trace

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        """Run one statement; its cursor holds the rows."""
        if self._trace is not None:
            self._trace(sql)
        cur = self.raw.cursor()
        cur.execute(_pg_sql(sql), tuple(params))
        if self._pipe is not None:
            return _PipelinedCursor(cur, self._pipe)  # type: ignore[return-value]
        return cur

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        """Run one statement for every parameter row (pipelined by psycopg)."""
        rows = [tuple(p) for p in params]
        cur = self.raw.cursor()
        if rows:
            if self._trace is not None:
                for _ in rows:
                    self._trace(sql)
            cur.executemany(_pg_sql(sql), rows)
        return cur

    def close(self) -> None:
        """Close the server connection."""
        self.raw.close()


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure)


def _broken(conn: Any) -> bool:
    raw = conn.raw
    return bool(raw.closed or raw.broken)


class PostgresStore(SqlStore):
    """:class:`dakghar.store.base.Store` on a PostgreSQL database."""

    _driver_errors = (psycopg.Error,)

    def __init__(self, url: str, settings: StoreSettings | None = None) -> None:
        if not is_postgres_url(url):
            raise ValueError(f"not a PostgreSQL URL: {url!r}")
        self.url = _conninfo(url)
        super().__init__(settings, readers="dakghar-pg-read")
        self._reader_conns: list[PgConnection] = []
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def _connect(self) -> PgConnection:
        raw = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        # Every execution planned for the parameters and the table as they are now. psycopg
        # prepares a statement run five times, and the server would then keep one generic plan
        # for the connection's life: a plan made while the queue and outbox tables were nearly
        # empty (a fresh database, a quiet hour) stays a sequential scan or a wrong index once
        # they hold thousands of rows, until an ANALYZE happens to invalidate it. Planning our
        # few, batched statements costs far less than one such plan (bench/scaleout.py: end to
        # end 950 -> 1,270 msg/s, the server's CPU per message down a third).
        raw.execute("SET plan_cache_mode = force_custom_plan")
        return PgConnection(raw)

    async def open(self) -> None:
        """Migrate (one process of the fleet at a time) and start the writer."""
        await asyncio.get_running_loop().run_in_executor(self._readers, self._migrate)
        self._writer, self._express = (
            GroupCommitWriter(
                self._connect,
                max_batch=self.settings.group_commit_max_batch,
                max_wait_ms=self.settings.group_commit_max_wait_ms,
                count_statements=self.settings.count_statements,
                begin="BEGIN",
                retryable=_retryable,
                broken=_broken,
                name=name,
                optimistic=True,
            )
            for name in ("dakghar-pg-writer", "dakghar-pg-express")
        )
        self._writer.start()
        self._express.start()

    def _migrate(self) -> None:
        from dakghar.store import engine_url

        engine = create_engine(engine_url(self.url))
        try:
            with engine.connect() as lock:
                # Processes starting together wait for the first one's migration.
                lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATE_LOCK})
                lock.commit()
                try:
                    migrate.upgrade(engine)
                finally:
                    lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATE_LOCK})
                    lock.commit()
        finally:
            engine.dispose()

    async def close(self) -> None:
        """Drain the writer, stop the readers and close their connections."""
        await super().close()
        with self._lock:
            for conn in self._reader_conns:
                with contextlib.suppress(Exception):
                    conn.close()
            self._reader_conns.clear()

    def _reader(self) -> PgConnection:
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is not None and _broken(conn):
            conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return conn
