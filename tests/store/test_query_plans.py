"""The hot statements keep index plans on PostgreSQL while the tables have no statistics yet.

A fresh database, or a table that grew by thousands of rows since autovacuum last looked, has
no useful statistics; a plan chosen from them once made each outbox claim walk every pending
event (17 ms a claim with 3,000 pending, the slowest step of the pipeline). These tests fill
tables without ANALYZE and read the plans the store's own connections get.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dakghar.store.sql import POSTGRESQL, Conn
from dakghar.store.sql.pipeline_ops import CLAIM_WEBHOOKS
from tests import pg


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.database() as url:
        yield url


def _plan(c: Conn, sql: str, params: tuple[object, ...]) -> str:
    # Run it as the store does, six times (past psycopg's prepare threshold of five: a
    # connection that kept generic plans would be using one now), then read its plan.
    for _ in range(6):
        c.execute(sql, params).fetchall()
    (doc,) = c.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    return json.dumps(doc)


async def test_the_outbox_claim_probes_each_message_by_its_own_index(pg_url: str) -> None:
    from dakghar.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    await store.open()
    try:

        def fill(c: Conn) -> None:  # 3,000 pending events, half of them due
            c.execute(
                "INSERT INTO webhook_events (event_id, account_id, message_id, url, payload, "
                "status, attempts, next_attempt_at, created_at) SELECT 'evt_' || g, 'acc_1', "
                "'msg_' || g, 'https://x.example/h', '{}', 'pending', 0, "
                "CASE WHEN g % 2 = 0 THEN 1 ELSE 1000000000000 END, 1 "
                "FROM generate_series(1, 3000) AS g"
            )

        await store._write(fill)
        sql = CLAIM_WEBHOOKS.format(per_row=POSTGRESQL.per_row)
        plan = await store._read(lambda c: _plan(c, sql, (1_000_000, 64)))
        inner = [n for n in _nodes(json.loads(plan)) if n.get("Alias") == "o"]
        assert inner, plan
        for node in inner:  # a probe of the message's own entries, not a walk of the index
            assert node.get("Index Name") == "ix_webhook_events_message", plan
            assert "message_id =" in str(node.get("Index Cond")), plan
        assert len(await store.claim_webhooks(64, lease_ms=60_000)) == 64
    finally:
        await store.close()


def _nodes(doc: object) -> Iterator[dict[str, object]]:
    if isinstance(doc, dict):
        if "Node Type" in doc:
            yield doc
        for v in doc.values():
            yield from _nodes(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _nodes(v)


async def test_a_batch_read_by_id_array_uses_the_primary_key(pg_url: str) -> None:
    """``id = ANY(array)`` (varchar ids against a text array) still probes the primary key."""
    from dakghar.store.postgres import PostgresStore
    from dakghar.store.sql.pipeline_ops import preload_messages
    from tests.store.test_sqlite_store import row

    store = PostgresStore(pg_url)
    await store.open()
    try:
        acc = await store.create_account(name="a", balance_milli=0)
        rows = [row(acc.id) for _ in range(20_000)]
        await store.accept_messages(acc.id, rows, charge=False)
        ids = sorted(r.id for r in rows[500:510])
        sql = "SELECT id FROM messages WHERE id = ANY(CAST(? AS text[])) ORDER BY id FOR UPDATE"
        plan = await store._read(lambda c: _plan(c, sql, (ids,)))
        assert "messages_pkey" in plan, plan
        got = await store._write(lambda c: preload_messages(c, ids))
        assert sorted(got) == ids
    finally:
        await store.close()
