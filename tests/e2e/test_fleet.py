"""One gateway from many processes: 2 ``api`` + 2 ``dispatcher`` on the real PostgreSQL.

Everything is observed from outside: the carrier (an SMPP simulator) sees the submits, a
webhook receiver sees the callbacks, and the database is read directly. Skipped, with the
reason, on a machine without PostgreSQL.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from dakghar.core.keys import parse_key
from tests import pg
from tests.coord.conftest import REDIS_UP, REDIS_URL
from tests.e2e.carrier import carrier
from tests.e2e.fleet import Fleet, config_text, fleet, post, receiver

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _needs_postgres() -> None:
    why = pg.unavailable()
    if why:
        pytest.skip(why)


def _wait(what: Callable[[], str], done: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what()
        time.sleep(0.2)


def _account(f: Fleet) -> str:
    return f.cli("accounts", "create", "fleet", "--sender", "DKGHAR", "--balance", "10000000",
                 "--rate", "100000", "--burst", "100000")  # fmt: skip


def test_a_fleet_delivers_live_and_sandbox_with_receipts_and_webhooks(
    tmp_path: Path,
) -> None:
    with carrier(receipt_delay_ms=(5.0, 30.0)) as sim, receiver() as app:
        assert sim.address is not None
        # A contracted rate keeps the live traffic longer than one dispatcher's claims can
        # hold (window plus claim-ahead), so both must take a share; without it the first to
        # wake can take each batch of 100 whole.
        with fleet(tmp_path, config_text(sim.address[1], rate=200)) as f:
            account = _account(f)
            live = f.cli("keys", "create", account, "--live")
            test = f.cli("keys", "create", account, "--sandbox")
            apis = [f.start_api(), f.start_api()]
            dispatchers = [f.start_dispatcher(), f.start_dispatcher()]
            ids: list[str] = []
            for n in range(6):  # every API takes a share of both kinds of traffic
                port = apis[n % 2]
                key = live if n < 4 else test
                batch = [{"to": f"+9198{n:02d}{i:06d}", "body": f"fleet {n} {i}",
                          "callback_url": app.url} for i in range(100)]  # fmt: skip
                status, body = post(port, key, "/v1/messages/batch", {"messages": batch})
                assert status == 202, body
                ids += [m["id"] for m in body["accepted"]]
            assert len(ids) == 600
            _wait(lambda: f"not all: {f.counts()}", lambda: f.counts().get("delivered") == 600)
            _wait(lambda: f"webhooks: {len(app.finals())}", lambda: len(app.finals()) == 600, 30)
            assert set(app.finals()) == set(ids)
            assert set(app.finals().values()) == {"delivered"}
            assert sim.stats.accepted == 400  # the live ones: sandbox never reaches a carrier

            def sent() -> list[int]:  # from the state snapshots the dispatchers write each second
                return [(f.state(d) or {}).get("stats", {}).get("sent", 0) for d in dispatchers]

            _wait(lambda: f"sent: {sent()}", lambda: sum(sent()) == 600, 10)
            assert min(sent()) > 0, sent()  # both dispatchers worked


def test_kill_9_of_a_dispatcher_loses_nothing_and_repeats_only_its_claims(
    tmp_path: Path,
) -> None:
    messages = 4000
    with carrier(receipt_delay_ms=(1.0, 10.0)) as sim:
        submitted: Counter[bytes] = Counter()
        sim.on_submit = lambda record: submitted.update([record.short_message])
        assert sim.address is not None
        with fleet(tmp_path, config_text(sim.address[1], window=50, rate=1500)) as f:
            account = _account(f)
            live = f.cli("keys", "create", account, "--live")
            apis = [f.start_api(), f.start_api()]
            victim_dir = f.start_dispatcher()
            f.start_dispatcher()
            for b in range(0, messages, 1000):
                batch = [{"to": f"+9198{i:08d}", "body": f"crash {i}"}
                         for i in range(b, b + 1000)]  # fmt: skip
                status, _ = post(apis[b // 1000 % 2], live, "/v1/messages/batch",
                                 {"messages": batch})  # fmt: skip
                assert status == 202
            _wait(lambda: "no quarter sent", lambda: sim.stats.accepted >= messages // 4)
            snap = f.state(victim_dir)
            assert snap is not None
            owner = snap["owner"]
            victim = f.dispatchers[0][1]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            [(held,)] = f.query(
                "SELECT count(*) FROM messages WHERE status = 'sending' AND lease_owner = %s",
                owner,
            )
            _wait(lambda: f"not every message was delivered: {f.counts()}",
                  lambda: f.counts().get("delivered") == messages, 150)  # fmt: skip
        assert set(submitted) == {f"crash {i}".encode() for i in range(messages)}
        duplicates = sum(n - 1 for n in submitted.values() if n > 1)
        print(f"\nkill -9 of one of two dispatchers: it held {held} claims; "
              f"all {messages} delivered, {duplicates} submitted twice")  # fmt: skip
        # Only the dead dispatcher's claims (handed to the carrier, or about to be, and not yet
        # recorded as sent) can go out twice; the live one's were never taken from it.
        assert duplicates <= held


needs_redis = pytest.mark.skipif(not REDIS_UP, reason="no Redis answering on 127.0.0.1:6379")


def _redis_env() -> dict[str, str]:
    return {"DAKGHAR_QUEUE_URL": REDIS_URL, "DAKGHAR_QUEUE_PREFIX": f"dk-{uuid.uuid4().hex[:8]}:"}


@needs_redis
def test_a_key_revoked_or_an_account_paused_is_refused_everywhere_within_a_second(
    tmp_path: Path,
) -> None:
    with carrier() as sim:
        assert sim.address is not None
        with fleet(tmp_path, config_text(sim.address[1]), **_redis_env()) as f:
            account = _account(f)
            key = f.cli("keys", "create", account, "--sandbox")
            other = f.cli("keys", "create", account, "--sandbox")
            apis = [f.start_api(), f.start_api()]
            one = {"to": "+919812345678", "body": "hello"}
            for port in apis:  # both processes have the keys verified and cached
                assert post(port, key, "/v1/messages", one)[0] == 202
                assert post(port, other, "/v1/messages", one)[0] == 202
            parsed = parse_key(key)
            assert parsed is not None
            key_id = parsed[1]
            f.cli("keys", "revoke", account, key_id)
            t0 = time.monotonic()
            _wait(lambda: "still accepted", lambda: all(
                post(p, key, "/v1/messages", one)[0] == 401 for p in apis), 5)  # fmt: skip
            revoked_after = time.monotonic() - t0
            f.cli("accounts", "pause", account)
            t1 = time.monotonic()
            _wait(lambda: "still sending", lambda: all(
                post(p, other, "/v1/messages", one)[0] == 503 for p in apis), 5)  # fmt: skip
            paused_after = time.monotonic() - t1
        print(f"\nrevoked key refused by both APIs after {revoked_after * 1000:.0f} ms, "
              f"paused account after {paused_after * 1000:.0f} ms")  # fmt: skip
        assert revoked_after < 1.0 and paused_after < 1.0


@needs_redis
def test_two_dispatchers_together_keep_the_connectors_contracted_rate(tmp_path: Path) -> None:
    rate, messages = 100, 600
    with carrier(receipt_delay_ms=(1.0, 5.0)) as sim:
        times: list[float] = []
        sim.on_submit = lambda record: times.append(time.monotonic())
        assert sim.address is not None
        # Two binds for the fleet: one each (bind leases), the rate shared by both.
        config = config_text(sim.address[1], window=20, rate=rate).replace(
            "window = 20\n", "window = 20\nbinds = 2\n"
        )
        with fleet(tmp_path, config, **_redis_env()) as f:
            account = _account(f)
            live = f.cli("keys", "create", account, "--live")
            api = f.start_api()
            dispatchers = [f.start_dispatcher(), f.start_dispatcher()]
            for b in range(0, messages, 300):
                batch = [{"to": f"+9198{i:08d}", "body": f"tps {i}"} for i in range(b, b + 300)]
                assert post(api, live, "/v1/messages/batch", {"messages": batch})[0] == 202
            _wait(lambda: f"sent {len(times)}", lambda: len(times) >= messages, 60)
            sent = [f.state(d)["stats"]["sent"] for d in dispatchers]  # type: ignore[index]
        steady = sorted(times)[50:-50]  # without the first and last half second
        achieved = (len(steady) - 1) / (steady[-1] - steady[0])
        print(f"\ntwo dispatchers ({sent} each) at a contracted {rate}/s: {achieved:.1f}/s")
        assert min(sent) > 0
        assert achieved <= rate * 1.05
        assert achieved >= rate * 0.9


@needs_redis
def test_the_fleet_never_opens_more_binds_than_the_connector_allows(tmp_path: Path) -> None:
    with carrier() as sim:
        assert sim.address is not None
        config = config_text(sim.address[1]).replace("rate = 0\n", "rate = 0\nbinds = 2\n")
        with fleet(tmp_path, config, **_redis_env()) as f:
            dispatchers = [f.start_dispatcher() for _ in range(3)]

            def bound() -> list[int]:
                out = []
                for d in dispatchers:
                    snap = f.state(d) or {}
                    binds = snap.get("connectors", {}).get("carrier", {}).get("binds", [])
                    out.append(sum(1 for b in binds if b.get("bound")))
                return out

            _wait(lambda: f"binds {bound()}", lambda: sum(bound()) == 2, 30)
            time.sleep(12)  # every bind was asked for by now: still two, on two processes
            assert sum(bound()) == 2 and max(bound()) == 1, bound()
            assert sim.stats.bound_sessions == 2  # the carrier's own count
            victim = f.dispatchers[bound().index(1)][1]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            _wait(lambda: "the bind stayed", lambda: sim.stats.bound_sessions == 1, 10)
            # Its lease runs out (10 s) and a dispatcher still running takes the slot.
            _wait(lambda: f"carrier binds {sim.stats.bound_sessions}",
                  lambda: sim.stats.bound_sessions == 2, 40)  # fmt: skip


# For each OTP: the promotional messages accepted before it and still unsent when it was
# accepted (waiting), and those of them that went out after it (overtaken).
OVERTAKEN = (
    "SELECT (SELECT count(*) FROM messages p WHERE p.type = 'promotional' "
    "AND p.created_at < o.created_at AND (p.submitted_at IS NULL "
    "OR p.submitted_at > o.created_at)), "
    "(SELECT count(*) FROM messages p WHERE p.type = 'promotional' "
    "AND p.created_at < o.created_at AND (p.submitted_at IS NULL "
    "OR p.submitted_at > o.submitted_at)) FROM messages o WHERE o.type = 'otp'"
)


def test_an_otp_is_not_held_behind_another_accounts_backlog(tmp_path: Path) -> None:
    backlog = 20_000
    with carrier(receipt_delay_ms=(1.0, 5.0)) as sim:
        assert sim.address is not None
        with fleet(tmp_path, config_text(sim.address[1], window=50, rate=1000)) as f:
            promos = f.cli("keys", "create", _account(f), "--live")
            otp = f.cli("keys", "create", _account(f), "--live")
            api = f.start_api()
            f.start_dispatcher()
            f.start_dispatcher()
            for b in range(0, backlog, 1000):
                batch = {"to": [f"+9198{i:08d}" for i in range(b, b + 1000)],
                         "body": "Flash sale", "type": "promotional"}  # fmt: skip
                assert post(api, promos, "/v1/messages/batch", batch)[0] == 202
            ids = []
            for i in range(10):
                status, body = post(
                    api,
                    otp,
                    "/v1/messages",
                    {"to": f"+9197{i:08d}", "body": f"Code {i:06d}", "type": "otp"},
                )
                assert status == 202, body
                ids.append(body["id"])
                time.sleep(0.2)
            _wait(lambda: "OTPs not all sent", lambda: f.query(
                "SELECT count(*) FROM messages WHERE type = 'otp' AND submitted_at IS NOT NULL"
            )[0][0] == 10, 30)  # fmt: skip
            waits = sorted(r[0] for r in f.query(
                "SELECT submitted_at - created_at FROM messages WHERE type = 'otp'"))  # fmt: skip
            counts = f.query(OVERTAKEN)
            claims = sorted(r[0] for r in f.query(
                "SELECT claimed_at - created_at FROM messages WHERE type = 'otp'"))  # fmt: skip
        behind = [waiting - overtaken for waiting, overtaken in counts]
        print(f"\nOTP accept->submit behind a {backlog:,} backlog: median {waits[5]} ms, max "
              f"{waits[-1]} ms (accept->claim median {claims[len(claims) // 2]} ms); "
              f"{min(c[0] for c in counts):,}-{max(c[0] for c in counts):,} promotional waiting "
              f"at each OTP's accept, at most {max(behind)} went out before it")  # fmt: skip
        # How many went out meanwhile depends on how fast the API took the backlog, so the test
        # needs a backlog still waiting when the OTPs came...
        assert min(c[0] for c in counts) > 4000, counts
        # ...and lanes are strict priorities on every dispatcher: an OTP goes out after what the
        # dispatchers had claimed already and what the carrier's rate let out while it was
        # claimed (100-300 of 13-17 thousand here), never after the queue (all of it).
        assert all(w - o <= w // 10 for w, o in counts), (counts, waits)
