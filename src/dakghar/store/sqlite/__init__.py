"""The embedded SQLite store."""

from dakghar.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
