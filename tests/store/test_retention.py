"""The retention purge: final messages older than the account's retention_days lose their body."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from dakghar.api.app import create_app
from dakghar.cli.main import cli
from dakghar.store.base import MessageRow, now_ms
from dakghar.store.sql.core import SqlStore
from dakghar.store.sqlite import SqliteStore
from tests.conftest import Gateway, make_settings
from tests.store.test_sqlite_store import row

DAY = 24 * 3600 * 1000


def aged(account_id: str, days: float, status: str = "delivered", **fields: object) -> MessageRow:
    """A message created ``days`` ago, in ``status``."""
    m = row(account_id)
    m.created_at = m.updated_at = now_ms() - int(days * DAY)
    m.status = status
    for name, value in fields.items():
        setattr(m, name, value)
    return m


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """Every backend (the contract suite: ``tests/store/conftest.py``)."""
    return any_store


async def bodies(store: SqlStore, account_id: str, *msgs: MessageRow) -> list[str | None]:
    got = [await store.get_message(account_id, m.id) for m in msgs]
    return [g.body if g else "missing" for g in got]


async def test_only_final_messages_past_retention_lose_their_body(store: SqlStore) -> None:
    acc = await store.create_account(name="a")  # retention_days 30, the default
    old = aged(acc.id, 31)
    old_otp = aged(acc.id, 40, "failed", redacted_body="Your code is ******")
    recent = aged(acc.id, 29)
    old_queued = aged(acc.id, 31, "queued")
    old_sent = aged(acc.id, 60, "sent")
    msgs = (old, old_otp, recent, old_queued, old_sent)
    await store.accept_messages(acc.id, list(msgs), charge=False)
    assert await store.purge_bodies(now_ms()) == 2
    assert await bodies(store, acc.id, *msgs) == [None, None, "hello", "hello", "hello"]
    otp = await store.get_message(acc.id, old_otp.id)
    assert otp is not None and otp.redacted_body is None
    assert otp.status == "failed" and otp.segments == 1  # the rest of the row stays
    assert await store.purge_bodies(now_ms()) == 0  # nothing left to do


async def test_each_account_keeps_bodies_for_its_own_retention(store: SqlStore) -> None:
    week = await store.create_account(name="week", retention_days=7)
    forever = await store.create_account(name="forever", retention_days=0)
    w_old, w_new = aged(week.id, 8), aged(week.id, 6)
    f_old = aged(forever.id, 3650)
    await store.accept_messages(week.id, [w_old, w_new], charge=False)
    await store.accept_messages(forever.id, [f_old], charge=False)
    assert await store.purge_bodies(now_ms()) == 1
    assert await bodies(store, week.id, w_old, w_new) == [None, "hello"]
    assert await bodies(store, forever.id, f_old) == ["hello"]


async def test_a_backlog_is_purged_in_bounded_batches_between_other_writes(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="a")
    old = [aged(acc.id, 45, status) for status in ("delivered", "undelivered", "expired") * 7]
    await store.accept_messages(acc.id, old, charge=False)
    ops_before = store.writer.operations
    purge = asyncio.create_task(store.purge_bodies(now_ms(), limit=2))
    # An accept submitted meanwhile commits while the purge is still going.
    fresh = row(acc.id)
    await store.accept_messages(acc.id, [fresh], charge=False)
    assert not purge.done()
    assert await purge == 21
    assert store.writer.operations - ops_before >= 21 // 2 + 1  # one statement per batch
    assert set(await bodies(store, acc.id, *old)) == {None}
    assert await bodies(store, acc.id, fresh) == ["hello"]


def test_the_api_shows_a_purged_body_as_null(gateway: Gateway) -> None:
    tenant = gateway.tenant()
    store = gateway.services.store
    old, recent = aged(tenant.account.id, 31), aged(tenant.account.id, 1)
    gateway.call(store.accept_messages, tenant.account.id, [old, recent], charge=False)
    url = f"/v1/messages/{old.id}"
    assert gateway.client.get(url, headers=tenant.headers).json()["body"] == "hello"
    assert gateway.call(store.purge_bodies, now_ms()) == 1
    got = gateway.client.get(url, headers=tenant.headers).json()
    assert got["body"] is None and got["status"] == "delivered"
    listed = gateway.client.get("/v1/messages", headers=tenant.headers).json()["data"]
    assert {m["id"]: m["body"] for m in listed} == {old.id: None, recent.id: "hello"}


def test_the_gateway_purges_once_at_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    async def seed() -> tuple[str, str]:
        s = SqliteStore(settings.database_url)
        await s.open()
        acc = await s.create_account(name="a")
        m = aged(acc.id, 90)
        await s.accept_messages(acc.id, [m], charge=False)
        await s.close()
        return acc.id, m.id

    account_id, message_id = asyncio.run(seed())
    with TestClient(create_app(settings)) as client:
        store = client.app.state.services.store  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        for _ in range(100):  # the start-up run is a background task
            got = portal.call(store.get_message, account_id, message_id)
            if got is not None and got.body is None:
                break
            portal.call(asyncio.sleep, 0.05)
        assert got is not None and got.body is None


def test_dakghar_purge_runs_it_once_and_prints_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    monkeypatch.setenv("DAKGHAR_DATABASE_URL", url)
    monkeypatch.setenv("DAKGHAR_DATA_DIR", str(tmp_path))

    async def seed() -> None:
        s = SqliteStore(url)
        await s.open()
        acc = await s.create_account(name="a")
        await s.accept_messages(acc.id, [aged(acc.id, 31), aged(acc.id, 32)], charge=False)
        await s.close()

    asyncio.run(seed())
    result = CliRunner().invoke(cli, ["purge", "--batch", "1"], obj={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == "purged 2 message bodies\n"
