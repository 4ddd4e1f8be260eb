"""The PostgreSQL store (scale-out): many processes over one database."""

from dakghar.store.postgres.store import PostgresStore, is_postgres_url

__all__ = ["PostgresStore", "is_postgres_url"]
