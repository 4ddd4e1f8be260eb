"""Real PostgreSQL for tests: one migrated template per session, a fresh database per test.

``CREATE DATABASE ... TEMPLATE`` copies the migrated template in milliseconds, so every test
gets its own database (dropped afterwards) without paying for the migrations each time. Tests
skip, saying why, on a machine where no server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SERVER = os.environ.get("DAKGHAR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_state: dict[str, str | None] = {}


def _admin() -> object:
    import psycopg

    return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)


def unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here (None: they can)."""
    if "why" not in _state:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            _state["why"] = "psycopg is not installed (pip install -e '.[postgres]')"
        else:
            try:
                _admin().close()  # type: ignore[attr-defined]
                _state["why"] = None
            except Exception as exc:
                _state["why"] = f"no PostgreSQL on 127.0.0.1:5432 ({type(exc).__name__})"
    return _state["why"]


def _url(name: str) -> str:
    return SERVER.rsplit("/", 1)[0] + "/" + name


def _template() -> str:
    name = _state.get("template")
    if name:
        return name
    from dakghar.store.postgres import PostgresStore

    name = f"dk_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = _admin()
    conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    conn.close()  # type: ignore[attr-defined]

    PostgresStore(_url(name))._migrate()  # synchronous: the fixtures' loop may be running
    _state["template"] = name
    return name


def drop_template() -> None:
    """Drop the session's template (conftest calls this at the end)."""
    name = _state.pop("template", None)
    if name:
        _drop([name])


_created: list[str] = []


def _new_database() -> str:
    """A fresh copy of the migrated template (skips the test when there is no server)."""
    why = unavailable()
    if why:
        pytest.skip(why)
    template = _template()
    name = f"dk_t_{uuid.uuid4().hex[:12]}"
    conn = _admin()
    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')  # type: ignore[attr-defined]
    conn.close()  # type: ignore[attr-defined]
    return name


def _drop(names: list[str]) -> None:
    conn = _admin()
    for name in names:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
    conn.close()  # type: ignore[attr-defined]


def create() -> str:
    """The URL of a fresh, migrated database, dropped by :func:`drop_created` at the end."""
    name = _new_database()
    _created.append(name)
    return _url(name)


def drop_created() -> None:
    """Drop what :func:`create` made, and the template."""
    if _created:
        _drop(_created)
        _created.clear()
    drop_template()


@contextmanager
def database() -> Iterator[str]:
    """The URL of a fresh, migrated database, dropped on exit."""
    name = _new_database()
    try:
        yield _url(name)
    finally:
        _drop([name])
