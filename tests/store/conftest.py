"""The store contract: tests taking ``any_store`` run against every backend.

SQLite always; PostgreSQL on the real server at 127.0.0.1:5432 (each test gets its own
database, dropped afterwards; skipped with the reason on a machine without one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dakghar.store.sql.core import SqlStore
from dakghar.store.sqlite import SqliteStore
from tests import pg

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """An open, empty store of each backend."""
    if request.param == "sqlite":
        store: SqlStore = SqliteStore(f"sqlite:///{tmp_path}/contract.db")
        await store.open()
        try:
            yield store
        finally:
            await store.close()
        return
    from dakghar.store.postgres import PostgresStore

    with pg.database() as url:
        store = PostgresStore(url)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


def twin(store: SqlStore) -> SqlStore:
    """A second store on the same database, as another process of the gateway would open."""
    from dakghar.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        return PostgresStore(store.url)
    assert isinstance(store, SqliteStore)
    return SqliteStore(f"sqlite:///{store.path}")
