"""``dakghar backup`` and ``dakghar restore`` on real SQLite files, with writers running."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dakghar.cli.main import cli
from dakghar.settings import PID_FILE
from dakghar.store import migrate
from dakghar.store.sqlite import SqliteStore
from tests.store.test_migrate_cli import old_database, stamp
from tests.store.test_sqlite_store import row

HEAD = migrate.head_revision()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with a secret key file and a database of one account, 3 messages."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("DAKGHAR_DATABASE_URL", f"sqlite:///{data}/dakghar.db")
    monkeypatch.setenv("DAKGHAR_DATA_DIR", str(data))
    monkeypatch.delenv("DAKGHAR_SECRET_KEY", raising=False)
    (data / "dakghar.secret").write_text("the-data-dir-secret\n")
    asyncio.run(fill(f"sqlite:///{data}/dakghar.db", 3))
    return data


async def fill(url: str, n: int) -> None:
    s = SqliteStore(url)
    await s.open()
    acc = await s.create_account(name="acme")
    await s.accept_messages(acc.id, [row(acc.id) for _ in range(n)], charge=False)
    await s.close()


def dakghar(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj={}, input=input)


def test_backup_prints_path_size_counts_and_the_secret_note(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    result = dakghar("backup", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"backup {out} ({out.stat().st_size:,} bytes)"
    assert lines[1] == "  3 messages, 1 accounts"
    assert "secret: NOT copied" in lines[2] and str(data / "dakghar.secret") in lines[2]
    assert "cannot be verified" in lines[2]
    assert not (tmp_path / "b.db.secret").exists()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # numbers, bodies, webhook secrets
    with sqlite3.connect(out) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file
    assert "secret" not in "".join(p.name for p in tmp_path.iterdir() if p.name != "data")


def test_backup_refuses_to_overwrite_without_force(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    out.write_bytes(b"keep me")
    result = dakghar("backup", str(out))
    assert result.exit_code == 1 and "exists; use --force" in result.output
    assert out.read_bytes() == b"keep me"
    assert dakghar("backup", str(out), "--force").exit_code == 0
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (3,)


def test_backup_with_secret_copies_the_key_file_private(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    result = dakghar("backup", str(out), "--with-secret")
    assert result.exit_code == 0, result.output
    secret = tmp_path / "b.db.secret"
    assert secret.read_text() == "the-data-dir-secret\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert "the-data-dir-secret" not in result.output  # named, never printed


def test_a_backup_taken_under_concurrent_writes_is_a_consistent_snapshot(
    data: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{data}/dakghar.db"
    stop, started = threading.Event(), threading.Event()

    async def write_until_stopped() -> None:
        s = SqliteStore(url)
        await s.open()
        acc = await s.create_account(name="busy", balance_milli=10**9)
        while not stop.is_set():
            # Each accept debits 1 credit per message in the same transaction as the rows.
            await s.accept_messages(acc.id, [row(acc.id) for _ in range(50)], charge=True)
            started.set()
        await s.close()

    writer = threading.Thread(target=lambda: asyncio.run(write_until_stopped()))
    writer.start()
    assert started.wait(30)
    try:
        outs = [tmp_path / f"b{i}.db" for i in range(3)]
        for out in outs:
            assert dakghar("backup", str(out)).exit_code == 0
    finally:
        stop.set()
        writer.join()
    for out in outs:
        with sqlite3.connect(out) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            spent, sent = conn.execute(
                "SELECT (1000000000 - a.balance_milli) / 1000, (SELECT count(*) FROM messages m "
                "WHERE m.account_id = a.id) FROM accounts a WHERE a.name = 'busy'"
            ).fetchone()
        assert spent == sent > 0  # balance and messages from the same instant


def test_restore_replaces_the_database_and_removes_a_stale_log(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    assert dakghar("backup", str(out)).exit_code == 0
    asyncio.run(fill(f"sqlite:///{data}/dakghar.db", 5))  # changes after the backup
    (data / "dakghar.db-wal").write_bytes(b"stale log of the old file" * 100)
    (data / "dakghar.db-shm").write_bytes(b"\0" * 32768)
    result = dakghar("restore", str(out), "--yes")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"restored {out} to {data / 'dakghar.db'} (schema {HEAD}; 3 messages, 1 accounts)\n"
    )
    assert not (data / "dakghar.db-wal").exists()
    with sqlite3.connect(data / "dakghar.db") as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (3,)
    with sqlite3.connect(data / "dakghar.db.before-restore") as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (8,)
    leftovers = [p.name for p in data.iterdir() if p.name.endswith("restore")]
    assert leftovers == ["dakghar.db.before-restore"]  # no temporary file left behind


def test_restore_asks_first_and_no_leaves_everything_as_it_was(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    asyncio.run(fill(f"sqlite:///{out}", 1))
    before = (data / "dakghar.db").read_bytes()
    result = dakghar("restore", str(out), input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert (data / "dakghar.db").read_bytes() == before
    assert dakghar("restore", str(out), input="y\n").exit_code == 0


def test_restore_migrates_an_old_backup_forward(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "old.db"
    old_database(out, "0001")
    result = dakghar("restore", str(out), "--yes")
    assert result.exit_code == 0, result.output
    assert f"(schema 0001 -> {HEAD};" in result.output
    with sqlite3.connect(data / "dakghar.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


def newer_database(path: Path) -> None:
    old_database(path, "head")
    stamp(path, "0999")


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.write_bytes(b"not a database at all" * 100), "is not a SQLite database"),
        (lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)"), "not a Dakghar database"),
        (lambda p: newer_database(p), "0999 is newer than this"),
    ],
)
def test_restore_refuses_what_is_not_a_usable_dakghar_database(
    data: Path, tmp_path: Path, make: object, why: str
) -> None:
    bad = tmp_path / "bad.db"
    make(bad)  # type: ignore[operator]
    before = (data / "dakghar.db").read_bytes()
    result = dakghar("restore", str(bad), "--yes")
    assert result.exit_code == 1 and why in result.output, result.output
    assert (data / "dakghar.db").read_bytes() == before


def test_restore_refuses_while_a_gateway_runs_on_the_data_directory(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "b.db"
    assert dakghar("backup", str(out)).exit_code == 0
    # A live process whose command line says serve, as `dakghar serve`'s does.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "serve"])
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    while b"serve" not in cmdline.read_bytes():  # until the exec, it is still pytest's
        time.sleep(0.01)
    try:
        (data / PID_FILE).write_text(f"{proc.pid}\n")
        result = dakghar("restore", str(out), "--yes")
        assert result.exit_code == 1
        assert f"dakghar serve (pid {proc.pid}" in result.output
        assert "stop it first" in result.output
    finally:
        proc.kill()
        proc.wait()
    # A stale pid file (the process is gone) does not block.
    assert dakghar("restore", str(out), "--yes").exit_code == 0


def test_restore_with_secret_installs_the_backup_secret(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    assert dakghar("backup", str(out), "--with-secret").exit_code == 0
    (data / "dakghar.secret").write_text("another-secret\n")
    warned = dakghar("restore", str(out), "--yes")
    assert "differs from this gateway's secret" in warned.output
    result = dakghar("restore", str(out), "--yes", "--with-secret")
    assert result.exit_code == 0, result.output
    assert (data / "dakghar.secret").read_text() == "the-data-dir-secret\n"
    assert stat.S_IMODE(os.stat(data / "dakghar.secret").st_mode) == 0o600


def test_restore_replaces_a_damaged_database(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    assert dakghar("backup", str(out)).exit_code == 0
    (data / "dakghar.db").write_bytes(b"\xff" * 8192)  # what a bad disk left
    result = dakghar("restore", str(out), "--yes")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(data / "dakghar.db") as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (3,)
    assert (data / "dakghar.db.before-restore").read_bytes() == b"\xff" * 8192
