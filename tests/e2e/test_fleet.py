"""One gateway from many processes: 2 ``api`` + 2 ``dispatcher`` on the real PostgreSQL.

Everything is observed from outside: the carrier (an SMPP simulator) sees the submits, a
webhook receiver sees the callbacks, and the database is read directly. Skipped, with the
reason, on a machine without PostgreSQL.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import pg
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
        with fleet(tmp_path, config_text(sim.address[1])) as f:
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
            sent = [f.state(d)["stats"]["sent"] for d in dispatchers]  # type: ignore[index]
            assert sum(sent) == 600 and min(sent) > 0, sent  # both dispatchers worked


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
