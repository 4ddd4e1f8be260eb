"""``dakghar migrate`` on old and empty databases, and the refusal of a newer schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine

from dakghar.cli.main import cli
from dakghar.store import migrate
from dakghar.store.sqlite import SqliteStore
from tests.e2e.serve_process import run_serve

HEAD = migrate.head_revision()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data" / "dakghar.db"
    monkeypatch.setenv("DAKGHAR_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("DAKGHAR_DATA_DIR", str(tmp_path / "data"))
    return path


def dakghar(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj={})


def stamp(path: Path, revision: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def old_database(path: Path, revision: str = "0001") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine, revision)
    engine.dispose()


def test_migrate_brings_an_old_database_to_the_head_and_says_from_where(db: Path) -> None:
    old_database(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO accounts (id, name, balance_milli, price_milli_per_segment, "
            "default_region, segment_limit, webhook_secret, rate_per_second, rate_burst, "
            "smart_encoding, dlt_enforced, sending_paused, retention_days, created_at) "
            "VALUES ('acc_old', 'old', 5000, 1000, 'IN', 10, 'whsec_x', 10, 20, 0, 0, 0, 30, 1)"
        )
    result = dakghar("migrate")
    assert result.exit_code == 0, result.output
    assert result.output == f"0001 -> {HEAD}\n"
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT name, balance_milli, webhook_events FROM accounts WHERE id = 'acc_old'"
        ).fetchone()
    assert row == ("old", 5000, "final")  # kept, with the later columns' defaults
    again = dakghar("migrate")
    assert again.output == f"{HEAD} -> {HEAD} (already current)\n"


def test_migrate_creates_the_schema_of_a_new_database(db: Path) -> None:
    result = dakghar("migrate")
    assert result.exit_code == 0, result.output
    assert result.output == f"(empty) -> {HEAD}\n"
    assert db.is_file()


async def test_the_store_refuses_a_schema_newer_than_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    s = SqliteStore(url)
    await s.open()
    await s.close()
    stamp(tmp_path / "new.db", "0999")
    with pytest.raises(migrate.SchemaTooNew, match="0999 is newer than this version"):
        await SqliteStore(url).open()
    with sqlite3.connect(tmp_path / "new.db") as conn:  # left as it was
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0999",)]


def test_migrate_refuses_a_newer_schema(db: Path) -> None:
    old_database(db, "head")
    stamp(db, "0999")
    result = dakghar("migrate")
    assert result.exit_code == 1
    assert "the database schema 0999 is newer than this version of dakghar" in result.output


def test_serve_refuses_a_newer_schema_in_one_line(tmp_path: Path) -> None:
    old_database(tmp_path / "serve.db", "head")
    stamp(tmp_path / "serve.db", "0999")
    done = run_serve(tmp_path, "")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "dakghar: error: the database schema 0999 is newer than this version of dakghar; "
        "upgrade dakghar"
    ]


def test_migrate_on_postgresql_from_an_old_schema_to_the_head(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import psycopg

    from dakghar.store import engine_url
    from tests import pg

    why = pg.unavailable()
    if why:
        pytest.skip(why)
    with pg.database() as url:  # migrated: take it back to 0001, as an old install
        engine = create_engine(engine_url(url))
        with engine.begin() as conn:
            from alembic import command

            cfg = migrate.alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        engine.dispose()
        monkeypatch.setenv("DAKGHAR_DATABASE_URL", url)
        monkeypatch.setenv("DAKGHAR_DATA_DIR", str(tmp_path))
        result = dakghar("migrate")
        assert result.exit_code == 0, result.output
        assert result.output == f"0001 -> {HEAD}\n"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '0999'")
        refused = dakghar("migrate")
        assert refused.exit_code != 0
        assert "0999 is newer than this version of dakghar" in refused.output


def test_a_backend_whose_driver_is_missing_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    from dakghar.coord import check_queue_url
    from dakghar.settings import Settings
    from dakghar.store import check_database_url

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as on `pip install dakghar` alone
    monkeypatch.setitem(sys.modules, "redis", None)
    settings = Settings(database_url="postgresql://db/x", queue_url="redis://r:6379/0")
    with pytest.raises(ValueError, match=r"pip install 'dakghar\[postgres\]'"):
        check_database_url(settings)
    with pytest.raises(ValueError, match=r"pip install 'dakghar\[redis\]'"):
        check_queue_url(settings)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migrations_build_the_schema_the_code_declares(backend: str, tmp_path: Path) -> None:
    """Every table, column and index of ``store.schema`` comes out of the migrations, and
    nothing else does (an index added to one and not the other fails here)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from dakghar.store import engine_url, schema
    from tests import pg

    if backend == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/schema.db")
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        engine.dispose()
        return
    why = pg.unavailable()
    if why:
        pytest.skip(why)
    with pg.database() as url:
        engine = create_engine(engine_url(url))
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        engine.dispose()


def test_0014_keeps_every_event_and_part_and_drops_only_their_foreign_keys(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/old.db")
    migrate.upgrade(engine, "0013")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        keys = conn.execute("PRAGMA foreign_key_list(message_events)").fetchall()
        assert [k[2] for k in keys] == ["messages"]  # 0013 still has the key
        conn.executemany(
            "INSERT INTO message_events (id, message_id, status, at, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            [(7, "msg_a", "queued", 1, None), (9, "msg_a", "sending", 2, "x")],
        )
        conn.execute("INSERT INTO message_parts VALUES ('c', 'p1', 'msg_a', 0, NULL)")
    migrate.upgrade(engine)
    engine.dispose()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        for table in ("message_events", "message_parts"):
            assert conn.execute(f"PRAGMA foreign_key_list({table})").fetchall() == []
        assert conn.execute("SELECT * FROM message_events ORDER BY id").fetchall() == [
            (7, "msg_a", "queued", 1, None),
            (9, "msg_a", "sending", 2, "x"),
        ]
        assert conn.execute("SELECT * FROM message_parts").fetchall() == [
            ("c", "p1", "msg_a", 0, None)
        ]
        # ids go on after the copied ones, and the indexes came back
        conn.execute("INSERT INTO message_events (message_id, status, at) VALUES ('m', 'q', 3)")
        assert conn.execute("SELECT MAX(id) FROM message_events").fetchone() == (10,)
        indexes = {r[1] for r in conn.execute("SELECT * FROM sqlite_master WHERE type='index'")}
        assert {"ix_message_events_message", "ix_message_parts_message"} <= indexes


def test_0015_makes_first_claims_a_column_and_its_downgrade_writes_them_back_as_events(
    tmp_path: Path,
) -> None:
    from alembic import command

    engine = create_engine(f"sqlite:///{tmp_path}/old.db")
    migrate.upgrade(engine, "0014")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute(
            "INSERT INTO messages (id, account_id, to_number, type, lane, status, segments, "
            "encoding, price_milli, sandbox, validity_seconds, expires_at, attempts, route_step, "
            "step_attempts, created_at, updated_at) VALUES ('msg_old', 'acc', '+919800000000', "
            "'transactional', 1, 'sent', 1, 'gsm7', 0, 0, 60, 9, 1, 0, 0, 1, 3)"
        )
        conn.execute(  # claimed before 0015: its first claim is a stored row
            "INSERT INTO message_events (message_id, status, at) VALUES ('msg_old', 'sending', 2)"
        )
    migrate.upgrade(engine)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT claimed_at FROM messages").fetchall() == [(None,)]
        conn.execute("UPDATE messages SET id = 'msg_new', claimed_at = 5")
    with engine.begin() as conn:
        cfg = migrate.alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")
    engine.dispose()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(messages)")]
        assert "claimed_at" not in columns and "lease_owner" in columns
        assert conn.execute(
            "SELECT message_id, status, at, detail FROM message_events ORDER BY id"
        ).fetchall() == [("msg_old", "sending", 2, None), ("msg_new", "sending", 5, None)]
