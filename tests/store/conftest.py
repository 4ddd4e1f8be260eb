"""The store contract: tests taking ``any_store`` run against every backend.

SQLite always; PostgreSQL when a server answers on 127.0.0.1:5432 (each test gets its own
database, dropped afterwards).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dakghar.store.sqlite import SqliteStore

BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An open, empty store of each backend."""
    store = SqliteStore(f"sqlite:///{tmp_path}/contract.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()
