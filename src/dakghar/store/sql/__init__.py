"""SQL shared by every relational backend (SQLite and PostgreSQL).

Each store backend (``store/sqlite``, ``store/postgres``) owns its connections, its writer and
what its dialect does differently (claims, locks, bulk reads). Everything else, the lifecycle
moves, accounts, OTP, campaigns, compliance and the outbox, is written once here as functions of
a DB-API connection (:class:`Conn`) and runs inside the backend's group-commit writer or on one
of its reader connections. So one module holds each domain fact, whichever database stores it.

Rules for the SQL in this package (it must run unchanged on SQLite 3.40 and PostgreSQL 15):
- ``?`` placeholders (the PostgreSQL connection translates them); no literal ``%``.
- No ``rowid``, no SQLite-only functions (``json_each``, scalar ``MAX(a, b)``, ``IFNULL``), no
  ``INSERT OR IGNORE/REPLACE``: use ``COALESCE``, ``CASE``, ``ON CONFLICT ... DO NOTHING/UPDATE``.
- Booleans as parameters (Python ``True``/``False``) or the literals ``TRUE``/``FALSE``, never
  ``1``/``0`` (PostgreSQL refuses ``boolean = integer``).
- Rows come back as tuples; convert booleans with ``bool()`` (SQLite returns 0/1).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one database says differently in the shared SQL (appended to the statements)."""

    name: str
    # Row locks for read-then-write: SQLite has one writer, so it needs none; PostgreSQL runs
    # writers of several processes at once, and without the lock two of them would both move
    # the same message or both spend the same balance.
    for_update: str = ""
    # The same lock on the message of a join (a report reads its part and message together).
    for_update_of_m: str = ""
    # A claim skips rows another dispatcher's open transaction is claiming.
    skip_locked: str = ""
    # The queue index, named where the planner needs telling (SQLite's skip scan).
    queue_index: str = ""
    # Serializes the two writers that meet on one carrier id: the dispatcher recording a
    # part's id and a report for that id arriving on another process's bind. Without it each
    # transaction misses the other's uncommitted row and the report waits forever. A
    # transaction-scoped lock taking (connector, provider id); empty: one writer, no need.
    part_lock: str = ""
    # Each statement is a round trip to a server: the shared SQL batches where it can.
    server: bool = False
    # ``part_lock`` for many carrier ids at once, in sorted order (one parameter: a list of
    # "connector/provider id" strings).
    part_locks: str = ""
    # Appended to an EXISTS subquery that must run as a probe per outer row: PostgreSQL keeps a
    # subquery with an OFFSET as it is instead of turning it into a join that a planner without
    # statistics may run as a scan of the whole table per row.
    per_row: str = ""
    # A true boolean as the schema's partial indexes spell it (``sandbox IS 1`` on SQLite),
    # so a query's predicate matches the index's.
    true: str = "1"


SQLITE = Dialect("sqlite", queue_index="INDEXED BY ix_messages_queue")
POSTGRESQL = Dialect(
    "postgresql",
    for_update=" FOR UPDATE",
    for_update_of_m=" FOR UPDATE OF m",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    part_lock="SELECT pg_advisory_xact_lock(hashtextextended(? || '/' || ?, 0))",
    server=True,
    per_row=" OFFSET 0",
    true="true",
    part_locks="SELECT COUNT(pg_advisory_xact_lock(hashtextextended(k, 0))) "
    "FROM (SELECT unnest(?::text[]) AS k ORDER BY 1) s",
)


class Cursor(Protocol):
    """What a statement returns: its rows, and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """The connection the shared SQL runs on (``sqlite3.Connection`` has this shape, and the
    PostgreSQL backend wraps its connection to match), with the :class:`Dialect` it speaks."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, params: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, params: Any, /) -> Cursor: ...


# -- many rows in one statement text ----------------------------------------------------------
#
# A statement whose text grows with its rows (``IN (?, ?, ...)``, ``VALUES (...), (...)``) is a
# new statement every time: psycopg parses its placeholders in Python (no cache past 4 kB) and
# the server parses and plans it afresh. Arrays keep one text per statement, whatever the count,
# so the driver caches it and the server runs it as a prepared statement. SQLite has no arrays
# and no round trips: there the list of placeholders stays (``executemany`` for inserts).


def in_list(c: Conn, values: Sequence[Any], sql_type: str = "text") -> tuple[str, list[Any]]:
    """The condition "is one of ``values``" to follow a column, and its parameters: on a server
    ``= ANY(CAST(? AS type[]))`` with one array; on SQLite ``IN (?, ?, ...)``."""
    if c.dialect.server:
        return f"= ANY(CAST(? AS {sql_type}[]))", [list(values)]
    return f"IN ({','.join('?' * len(values))})", list(values)


# Values per IN list where a long list is split: well under SQLite's limit of bound variables
# (32,766), and short enough to keep the statement cache of either dialect useful.
IN_LIST_CHUNK = 500


def in_lists(
    c: Conn, values: Sequence[Any], sql_type: str = "text", size: int = IN_LIST_CHUNK
) -> Iterator[tuple[str, list[Any]]]:
    """:func:`in_list` for each run of at most ``size`` of ``values``, in their order."""
    for i in range(0, len(values), size):
        yield in_list(c, values[i : i + size], sql_type)


def unnest(types: Sequence[str]) -> str:
    """A server's relation of rows from one array per column (``columns`` gives them):
    ``unnest(CAST(? AS t1[]), CAST(? AS t2[]), ...)``, to follow ``FROM`` or ``SELECT * FROM``."""
    return "unnest(" + ", ".join(f"CAST(? AS {t}[])" for t in types) + ")"


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """``rows`` as one list per column (the parameters of :func:`unnest`)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(col) for col in zip(*rows, strict=True)]


_TYPES: dict[str, dict[str, str]] = {}


def column_types(table: str) -> dict[str, str]:
    """PostgreSQL's type of each column of ``table`` (for the casts of :func:`unnest`), from
    the schema the migrations create (``store.schema``)."""
    types = _TYPES.get(table)
    if types is None:
        from sqlalchemy.dialects import postgresql

        from dakghar.store.schema import metadata

        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        types = {col.name: col.type.compile(dialect=dialect) for col in metadata.tables[table].c}
        _TYPES[table] = types
    return types
