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


def is_embedded(url: str) -> bool:
    """Whether ``url`` names the embedded store (one SQLite file, one dispatcher at a time)."""
    return url.startswith("sqlite:///")


def _postgres_store() -> type[Store]:
    try:
        import psycopg  # noqa: F401  (the driver itself, even once our module is loaded)

        from dakghar.store.postgres import PostgresStore
    except ImportError as exc:
        raise ValueError(
            "DAKGHAR_DATABASE_URL names PostgreSQL, which needs psycopg: "
            "pip install 'dakghar[postgres]'"
        ) from exc
    return PostgresStore


def check_database_url(settings: Settings) -> None:
    """Refuse, in one line (``ValueError``), a database URL this installation cannot open."""
    url = settings.database_url
    if url.startswith(("postgresql://", "postgres://")):
        _postgres_store()
    elif not is_embedded(url):
        open_store(settings)  # raises, naming the scheme


def open_store(settings: Settings) -> Store:
    """The store for ``settings.database_url`` (not yet opened)."""
    url = settings.database_url
    if is_embedded(url):
        from dakghar.store.sqlite import SqliteStore

        return SqliteStore(url, settings.store)
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres_store()(url, settings.store)  # type: ignore[call-arg]
    raise ValueError(f"unsupported DAKGHAR_DATABASE_URL scheme: {url.split(':', 1)[0]!r}")


__all__ = ["Store", "check_database_url", "engine_url", "is_embedded", "open_store", "sqlite_file"]
