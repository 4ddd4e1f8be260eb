"""Persistence: the :class:`Store` interface and a factory choosing the backend by URL."""

from __future__ import annotations

from dakghar.settings import Settings
from dakghar.store.base import Store


def engine_url(url: str) -> str:
    """The SQLAlchemy URL of a ``DAKGHAR_DATABASE_URL`` (PostgreSQL through psycopg 3), for
    migrations and the CLI's cold paths."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def sqlite_file(url: str) -> str:
    """The file of a ``sqlite:///`` URL (``ValueError`` for another backend or ``:memory:``):
    for what only the embedded store has, such as ``dakghar backup``."""
    from dakghar.store.sqlite.store import sqlite_path

    return sqlite_path(url)


def check_database_url(settings: Settings) -> None:
    """Refuse, in one line (``ValueError``), a database URL this installation cannot open."""
    url = settings.database_url
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise ValueError(
                "DAKGHAR_DATABASE_URL names PostgreSQL, which needs psycopg: "
                "pip install 'dakghar[postgres]'"
            ) from exc
    elif not url.startswith("sqlite:///"):
        open_store(settings)  # raises, naming the scheme


def open_store(settings: Settings) -> Store:
    """The store for ``settings.database_url`` (not yet opened)."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        from dakghar.store.sqlite import SqliteStore

        return SqliteStore(url, settings.store)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from dakghar.store.postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(
                "DAKGHAR_DATABASE_URL names PostgreSQL, which needs psycopg: "
                "pip install 'dakghar[postgres]'"
            ) from exc

        return PostgresStore(url, settings.store)
    raise ValueError(f"unsupported DAKGHAR_DATABASE_URL scheme: {url.split(':', 1)[0]!r}")


__all__ = ["Store", "check_database_url", "engine_url", "open_store", "sqlite_file"]
