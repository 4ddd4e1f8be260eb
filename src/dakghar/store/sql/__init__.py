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

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    """What a statement returns: rows, and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...  # read-only, as on sqlite3.Cursor

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Any: ...


class Conn(Protocol):
    """The connection the shared SQL runs on (``sqlite3.Connection`` has this shape, and the
    PostgreSQL backend wraps its connection to match)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Cursor: ...
