"""The policy's cache of each account's rules: read asynchronously, never on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dakghar.compliance import records
from dakghar.compliance.policy import Compliance
from dakghar.compliance.templates import Template
from dakghar.errors import NotReady
from dakghar.store.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(f"sqlite:///{tmp_path}/policy.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_rules_are_read_again_after_the_interval_or_an_invalidate(
    store: SqliteStore,
) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    clock = Clock()
    policy = Compliance(store, refresh_ms=2000, clock=clock)
    await records.add_sender(store, acc.id, records.Sender("ACMEBK", "service", "1201"))
    assert set((await policy.prepare(acc.id)).senders) == {"ACMEBK"}
    await records.add_sender(store, acc.id, records.Sender("ACMESL", "promotional", None))
    clock.now += 1.9
    assert set((await policy.prepare(acc.id)).senders) == {"ACMEBK"}  # fresh: not read
    assert set(policy.rules(acc.id).senders) == {"ACMEBK"}
    clock.now += 0.2
    assert set((await policy.prepare(acc.id)).senders) == {"ACMEBK", "ACMESL"}
    await records.suppress(store, acc.id, "+919812345678", "opt_out")
    policy.invalidate(acc.id)
    assert (await policy.prepare(acc.id)).suppressed == {"+919812345678"}
    assert policy.suppressed(acc.id, "+919812345678")


async def test_a_check_on_the_loop_never_waits_for_the_database(store: SqliteStore) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    clock = Clock()
    policy = Compliance(store, refresh_ms=2000, clock=clock)
    await records.add_sender(store, acc.id, records.Sender("ACMEBK", "service", None))
    with pytest.raises(NotReady):
        policy.rules(acc.id)  # never read: refused rather than read on the loop ...
    for _ in range(100):  # ... and read in the background meanwhile
        await asyncio.sleep(0.01)
        try:
            rules = policy.rules(acc.id)
            break
        except NotReady:
            continue
    assert set(rules.senders) == {"ACMEBK"}
    await records.add_sender(store, acc.id, records.Sender("ACMESL", "promotional", None))
    clock.now += 5
    assert set(policy.rules(acc.id).senders) == {"ACMEBK"}  # stale, used while re-read
    await asyncio.sleep(0.2)
    assert set(policy.rules(acc.id).senders) == {"ACMEBK", "ACMESL"}


async def test_concurrent_checks_share_one_read_and_another_thread_may_wait(
    store: SqliteStore,
) -> None:
    acc = await store.create_account(name="a", balance_milli=0)
    policy = Compliance(store)
    await records.add_templates(store, acc.id, [Template("T1", "ACMEBK", "service", "Hi {#var#}")])
    first, second = await asyncio.gather(policy.prepare(acc.id), policy.prepare(acc.id))
    assert first is second
    policy.invalidate()
    # A thread that may block (a script, a test) waits for the read the loop makes for it.
    rules = await asyncio.to_thread(policy.rules, acc.id)
    assert rules is not first and rules.templates.match("ACMEBK", "Hi there") is not None
