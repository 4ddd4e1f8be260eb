"""The SQLite store: group commit, atomic debits, the lifecycle rule, and crash-free reopening."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from dakghar.core.ids import new_id
from dakghar.core.message import Status
from dakghar.store import migrate
from dakghar.store.base import MessageRow, now_ms
from dakghar.store.sqlite import SqliteStore


def row(account_id: str, price: int = 1000, status: str = "queued") -> MessageRow:
    now = now_ms()
    return MessageRow(
        id=new_id("msg"), account_id=account_id, to_number="+919812345678", sender=None,
        type="transactional", lane=1, status=status, error_code=None, error_detail=None,
        body="hello", segments=1, encoding="GSM-7", price_milli=price, country="IN",
        carrier="Vi", region=None, connector=None, provider_message_id=None, reference=None,
        callback_url=None, template_id=None, sandbox=False, schedule_at=None,
        validity_seconds=86400, expires_at=now + 86_400_000, attempts=0, next_attempt_at=now,
        route_step=0, step_attempts=0, lease_until=None,
        created_at=now, submitted_at=None, delivered_at=None, updated_at=now,
    )  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(f"sqlite:///{tmp_path}/s.db")
    await s.open()
    yield s  # type: ignore[misc]
    await s.close()


async def test_concurrent_accepts_share_commits_and_never_overdraw(store: SqliteStore) -> None:
    acc = await store.create_account(name="a", balance_milli=300_000)
    outcomes = await asyncio.gather(
        *(store.accept_messages(acc.id, [row(acc.id)], charge=True) for _ in range(500))
    )
    accepted = sum(len(o.accepted) for o in outcomes)
    refused = sum(len(o.no_credit) for o in outcomes)
    assert (accepted, refused) == (300, 200)
    fresh = await store.get_account(acc.id)
    assert fresh is not None and fresh.balance_milli == 0
    # Many operations rode on each commit: that is the point of the writer thread.
    assert store.writer.commits < store.writer.operations / 5


async def test_one_failing_operation_does_not_undo_its_batch_neighbours(
    store: SqliteStore,
) -> None:
    acc = await store.create_account(name="a", balance_milli=10_000)
    good, dup = row(acc.id), row(acc.id)
    bad_twin = row(acc.id)
    bad_twin.id = dup.id  # primary-key clash inside one batch
    results = await asyncio.gather(
        store.accept_messages(acc.id, [good], charge=True),
        store.accept_messages(acc.id, [dup], charge=True),
        store.accept_messages(acc.id, [bad_twin], charge=True),
        return_exceptions=True,
    )
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert await store.get_message(acc.id, good.id) is not None
    assert await store.get_message(acc.id, dup.id) is not None
    fresh = await store.get_account(acc.id)
    assert fresh is not None and fresh.balance_milli == 8000  # the failed one was not charged


async def test_status_never_moves_backwards_and_history_is_append_only(
    store: SqliteStore,
) -> None:
    acc = await store.create_account(name="a", balance_milli=10_000)
    m = row(acc.id)
    await store.accept_messages(acc.id, [m], charge=True)
    assert await store.transition(m.id, Status.SENDING) is not None
    assert await store.transition(m.id, Status.SENT, fields={"connector": "smsc1"}) is not None
    assert await store.transition(m.id, Status.QUEUED) is None  # backwards
    done = await store.transition(m.id, Status.DELIVERED, detail="DELIVRD")
    assert done is not None and done.connector == "smsc1"
    assert await store.transition(m.id, Status.FAILED) is None  # final stays final
    got = await store.get_message(acc.id, m.id, with_events=True)
    assert got is not None and got.status == "delivered"
    assert [e.status for e in got.events or []] == ["queued", "sending", "sent", "delivered"]


async def test_reopening_migrates_nothing_twice_and_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    s1 = SqliteStore(url)
    await s1.open()
    acc = await s1.create_account(name="keep", balance_milli=1)
    await s1.close()
    s2 = SqliteStore(url)
    await s2.open()
    got = await s2.get_account(acc.id)
    await s2.close()
    assert got is not None and got.name == "keep"
    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        stamped = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
    heads = ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_heads()
    assert stamped == set(heads)  # the head, applied once


def test_migrations_form_one_linear_history() -> None:
    script = ScriptDirectory(str(migrate.MIGRATIONS_DIR))
    assert len(script.get_heads()) == 1
    for rev in script.walk_revisions():
        assert not isinstance(rev.down_revision, tuple), f"{rev.revision} is a merge"
        assert len(rev.nextrev) <= 1, f"{rev.revision} branches"


async def test_a_database_stamped_with_the_two_former_heads_upgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    s1 = SqliteStore(url)
    await s1.open()
    acc = await s1.create_account(name="old", balance_milli=1)
    await s1.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as the two-headed history left it
        conn.execute("UPDATE alembic_version SET version_num = '0007'")
        conn.execute("INSERT INTO alembic_version VALUES ('0006')")
        conn.execute("DROP INDEX ix_messages_queue")
        conn.execute(
            "CREATE INDEX ix_messages_queue ON messages (lane, account_id, next_attempt_at) "
            "WHERE status = 'queued'"
        )
        conn.execute("ALTER TABLE accounts DROP COLUMN webhook_events")
        conn.execute("ALTER TABLE accounts DROP COLUMN inbound_url")
        for later in ("previous_webhook_secret", "previous_secret_expires_at"):  # 0009
            conn.execute(f"ALTER TABLE accounts DROP COLUMN {later}")
        conn.execute("DROP TABLE dispatchers")  # 0010
        conn.execute("ALTER TABLE messages DROP COLUMN lease_owner")
        conn.execute("ALTER TABLE messages DROP COLUMN claimed_at")  # 0015
        conn.execute("DROP INDEX ix_messages_sandbox_queue")  # 0012
        conn.execute("DROP TABLE stats_hourly")  # 0013: as 0007 made it, with no shard
        counts = ", ".join(f"{c} INTEGER NOT NULL" for c in
                           ["submitted", "delivered", "failed", "delivery_ms",
                            *(f"d{i}" for i in range(10))])  # fmt: skip
        conn.execute(
            "CREATE TABLE stats_hourly (account_id VARCHAR(40) NOT NULL, hour BIGINT NOT NULL, "
            "carrier VARCHAR(40) NOT NULL, region VARCHAR(40) NOT NULL, connector VARCHAR(64) "
            f"NOT NULL, type VARCHAR(16) NOT NULL, {counts}, PRIMARY KEY (account_id, hour, "
            "carrier, region, connector, type))"
        )
    s2 = SqliteStore(url)
    await s2.open()
    got = await s2.get_account(acc.id)
    await s2.close()
    assert got is not None and got.webhook_events == "final"
    with sqlite3.connect(tmp_path / "old.db") as conn:
        stamped = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
    assert stamped == ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_heads()


def test_an_in_memory_database_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        SqliteStore("sqlite:///:memory:")
