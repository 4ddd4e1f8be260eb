"""The store's OTP operations on real SQLite, and the masking of OTP bodies once sent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from dakghar.core.ids import new_id
from dakghar.store.base import OtpVerification, StatusChange, now_ms
from dakghar.store.sql.core import SqlStore
from dakghar.store.sqlite import SqliteStore
from tests.store.test_sqlite_store import row

SECRET = b"s" * 32


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """Every backend (the contract suite: ``tests/store/conftest.py``)."""
    return any_store


def digest(otp_id: str, code: str) -> str:
    return hmac.new(SECRET, f"{otp_id}\0{code}".encode(), hashlib.sha256).hexdigest()


def matcher(code: str):  # type: ignore[no-untyped-def]
    return lambda v: hmac.compare_digest(digest(v.id, code), v.code_hash)


def verification(
    account_id: str, *, code: str = "123456", ttl_ms: int = 300_000
) -> OtpVerification:
    now = now_ms()
    otp_id = new_id("otp")
    return OtpVerification(
        id=otp_id, account_id=account_id, to_number="+919812345678",
        code_hash=digest(otp_id, code), status="pending", attempts_left=5, resends=0,
        resend_after=now, expires_at=now + ttl_ms, message_id=None, code_length=6,
        ttl_seconds=300, template="Code {code}", template_id=None, sender=None,
        created_at=now, updated_at=now, approved_at=None,
    )  # fmt: skip


async def otp_message(store: SqlStore, account_id: str, *, sandbox: bool) -> str:
    m = replace(
        row(account_id), type="otp", lane=0, body="Code 123456", redacted_body="Code ******",
        sandbox=sandbox,
    )  # fmt: skip
    await store.accept_messages(account_id, [m], charge=False)
    return m.id


async def test_a_live_otp_body_is_masked_once_a_carrier_has_it(store: SqlStore) -> None:
    acc = await store.create_account(name="a")
    mid = await otp_message(store, acc.id, sandbox=False)
    queued = await store.get_message(acc.id, mid)
    assert queued is not None and queued.body == "Code 123456"  # the connector needs it
    claimed, _ = await store.claim(0, [acc.id], 5, lease_ms=30_000)
    assert claimed[0].body == "Code 123456"
    sent = await store.mark_sent(mid, "smsc-a", ["p-1"])
    assert sent is not None and sent.body == "Code ******"
    stored = await store.get_message(acc.id, mid)
    assert stored is not None and stored.body == "Code ******"


async def test_a_live_otp_retried_after_a_temporary_failure_still_carries_its_code(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="a")
    mid = await otp_message(store, acc.id, sandbox=False)
    await store.claim(0, [acc.id], 5, lease_ms=30_000)
    # The carrier answered "try again later": the claim ends, the message waits for its retry.
    retry = StatusChange(mid, "sending", detail="retry 1 in 0.1 s: throttled",
                         fields={"lease_until": None, "next_attempt_at": now_ms()})  # fmt: skip
    await store.apply([retry])
    again, _ = await store.claim(0, [acc.id], 5, lease_ms=30_000)
    assert [(m.id, m.body) for m in again] == [(mid, "Code 123456")]  # not the masked text
    sent = await store.mark_sent(mid, "smsc-a", ["p-1"])
    assert sent is not None and sent.body == "Code ******"


async def test_a_live_otp_that_ends_unsent_is_masked_too(store: SqlStore) -> None:
    acc = await store.create_account(name="a")
    mid = await otp_message(store, acc.id, sandbox=False)
    await store.apply([StatusChange(mid, "failed", error_code="no_route", detail="no route")])
    stored = await store.get_message(acc.id, mid)
    assert stored is not None and stored.body == "Code ******"


async def test_sandbox_and_ordinary_bodies_are_kept_when_sent(store: SqlStore) -> None:
    acc = await store.create_account(name="a")
    sandbox = await otp_message(store, acc.id, sandbox=True)
    plain = row(acc.id)
    await store.accept_messages(acc.id, [plain], charge=False)
    await store.claim(0, [acc.id], 5, lease_ms=30_000)
    await store.claim(1, [acc.id], 5, lease_ms=30_000)
    assert (await store.mark_sent(sandbox, "sim", ["s-1"])).body == "Code 123456"  # type: ignore[union-attr]
    assert (await store.mark_sent(plain.id, "sim", ["s-2"])).body == "hello"  # type: ignore[union-attr]


async def test_twenty_racing_wrong_checks_take_exactly_the_attempts_left(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="a")
    otp = verification(acc.id)
    await store.create_otp(otp)
    results = await asyncio.gather(
        *(
            store.check_otp(
                acc.id, otp_id=otp.id, to_number=None, matches=matcher("000000"), now=now_ms()
            )
            for _ in range(20)
        )
    )
    outcomes = sorted(r.outcome for r in results if r is not None)
    assert outcomes == ["closed"] * 15 + ["failed"] + ["wrong"] * 4
    right = await store.check_otp(
        acc.id, otp_id=otp.id, to_number=None, matches=matcher("123456"), now=now_ms()
    )
    assert right is not None and right.outcome == "closed"
    assert (right.verification.status, right.verification.attempts_left) == ("failed", 0)


async def test_the_right_code_approves_once(store: SqlStore) -> None:
    acc = await store.create_account(name="a")
    otp = verification(acc.id)
    await store.create_otp(otp)
    first = await store.check_otp(
        acc.id, otp_id=None, to_number=otp.to_number, matches=matcher("123456"), now=now_ms()
    )
    assert first is not None and first.outcome == "approved"
    assert first.verification.approved_at is not None
    again = await store.check_otp(
        acc.id, otp_id=otp.id, to_number=None, matches=matcher("123456"), now=now_ms()
    )
    assert again is not None and again.outcome == "closed"
    other = await store.create_account(name="b")
    assert (
        await store.check_otp(
            other.id, otp_id=otp.id, to_number=None, matches=matcher("123456"), now=now_ms()
        )
        is None
    )


async def test_only_one_of_two_racing_resends_wins(store: SqlStore) -> None:
    acc = await store.create_account(name="a")
    otp = verification(acc.id)
    await store.create_otp(otp)
    now = now_ms()
    results = await asyncio.gather(
        *(
            store.resend_otp(
                acc.id,
                otp.id,
                resends=0,
                code_hash=digest(otp.id, code),
                message_id=f"msg_{code}",
                resend_after=now + 60_000,
                expires_at=now + 300_000,
                now=now,
            )
            for code in ("111111", "222222")
        )
    )
    won = [r for r in results if r is not None]
    assert len(won) == 1 and won[0].resends == 1
    # Before resend_after, no further resend is taken.
    assert (
        await store.resend_otp(
            acc.id,
            otp.id,
            resends=1,
            code_hash="x",
            message_id="m",
            resend_after=None,
            expires_at=now,
            now=now + 1,
        )
        is None
    )


async def test_a_new_verification_supersedes_and_the_sweep_expires_the_rest(
    store: SqlStore,
) -> None:
    acc = await store.create_account(name="a")
    first = verification(acc.id)
    assert await store.create_otp(first) == 0
    assert await store.create_otp(verification(acc.id, ttl_ms=1)) == 1
    old = await store.get_otp(acc.id, first.id)
    assert old is not None and old.status == "expired"
    assert await store.expire_otps(now_ms() + 10) == 1
    assert await store.expire_otps(now_ms() + 10) == 0


async def test_a_database_at_0001_upgrades_in_place_and_keeps_its_messages(
    tmp_path: Path,
) -> None:
    from sqlalchemy import create_engine

    from dakghar.store import migrate

    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine, "0001")
    engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO accounts (id, name, balance_milli, price_milli_per_segment, "
            "default_region, segment_limit, webhook_secret, rate_per_second, rate_burst, "
            "smart_encoding, dlt_enforced, sending_paused, retention_days, created_at) "
            "VALUES ('acc_old', 'old', 0, 1000, 'IN', 10, 'w', 1, 1, 0, 0, 0, 30, 0)"
        )
        conn.execute(
            "INSERT INTO messages (id, account_id, to_number, type, lane, status, body, segments, "
            "encoding, price_milli, sandbox, validity_seconds, expires_at, attempts, route_step, "
            "step_attempts, created_at, updated_at) VALUES ('msg_old', 'acc_old', '+919812345678', "
            "'transactional', 1, 'delivered', 'kept', 1, 'GSM-7', 0, 0, 60, 1, 1, 0, 0, 0, 0)"
        )
    store = SqliteStore(f"sqlite:///{path}")
    await store.open()
    try:
        old = await store.get_message("acc_old", "msg_old")
        assert old is not None and (old.body, old.redacted_body) == ("kept", None)
        await store.create_otp(verification("acc_old"))
    finally:
        await store.close()
