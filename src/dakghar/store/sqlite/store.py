"""The embedded store: SQLite in WAL mode.

Writes go through :class:`GroupCommitWriter` (one thread, group commit); reads run on a small
pool of reader threads with their own connections, which WAL lets proceed while the writer works.
Schema, migrations and SQL are shared with every relational backend (``store/schema.py``,
Alembic, ``store/sql``); this module holds only what SQLite does differently.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine

from dakghar.settings import StoreSettings
from dakghar.store import migrate
from dakghar.store.sql import SQLITE
from dakghar.store.sql.core import AccountGone, NotCancelable, SqlStore
from dakghar.store.sql.writer import GroupCommitWriter

T = TypeVar("T")

__all__ = ["AccountGone", "NotCancelable", "SqliteConnection", "SqliteStore", "sqlite_path"]


class SqliteConnection(sqlite3.Connection):
    """A ``sqlite3`` connection that says which dialect the shared SQL speaks on it."""

    dialect = SQLITE


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///path`` URL (``sqlite:///:memory:`` is refused: not shared)."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url!r}")
    path = url[len("sqlite:///") :]
    if path in ("", ":memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared by threads; use a file")
    return path


class SqliteStore(SqlStore):
    """:class:`dakghar.store.base.Store` on one SQLite file."""

    _driver_errors = (sqlite3.Error,)

    def __init__(self, url: str, settings: StoreSettings | None = None) -> None:
        self.path = sqlite_path(url)
        super().__init__(settings, readers="dakghar-sqlite-read")

    # -- lifecycle ---------------------------------------------------------------------------

    def _connect(self) -> SqliteConnection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
            factory=SqliteConnection,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.settings.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    async def open(self) -> None:
        """Create the file's directory, migrate, and start the writer."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        await asyncio.get_running_loop().run_in_executor(self._readers, self._migrate)
        self._writer = GroupCommitWriter(
            self._connect,
            max_batch=self.settings.group_commit_max_batch,
            max_wait_ms=self.settings.group_commit_max_wait_ms,
            lock_path=self.path + ".write.lock",
            count_statements=self.settings.count_statements,
            max_hold_ms=self.settings.group_commit_max_hold_ms or None,
        )
        self._writer.start()

    def _migrate(self) -> None:
        # Processes opening a new database at once (an api and a dispatcher started together)
        # must not both create its tables: one migrates while the others wait.
        fd = os.open(self.path + ".migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            engine = create_engine(f"sqlite:///{self.path}")
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                migrate.upgrade(engine)
            finally:
                engine.dispose()
        finally:
            os.close(fd)

    def _reader(self) -> SqliteConnection:
        conn: SqliteConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn
