"""Alembic migrations for every store backend; run by :func:`dakghar.store.migrate`."""
