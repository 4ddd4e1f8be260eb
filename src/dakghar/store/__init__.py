"""Persistence: the :class:`Store` interface and a factory choosing the backend by URL."""

from __future__ import annotations

from dakghar.settings import Settings
from dakghar.store.base import Store


def open_store(settings: Settings) -> Store:
    """The store for ``settings.database_url`` (not yet opened)."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        from dakghar.store.sqlite import SqliteStore

        return SqliteStore(url, settings.store)
    if url.startswith(("postgresql://", "postgres://")):
        from dakghar.store.postgres import PostgresStore

        return PostgresStore(url, settings.store)
    raise ValueError(f"unsupported DAKGHAR_DATABASE_URL scheme: {url.split(':', 1)[0]!r}")


__all__ = ["Store", "open_store"]
