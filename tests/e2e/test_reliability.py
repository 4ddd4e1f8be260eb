"""Carrier faults through the whole pipeline: errors, timeouts, and a primary that dies mid-run.

Live traffic goes over real SMPP sessions to simulated carriers running in this process (each
in its own thread and loop); the gateway is the real app with its delivery component.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dakghar.pipeline.breaker import CircuitBreaker
from tests.e2e.carrier import carrier, stop_now
from tests.e2e.test_delivery import FINAL, delivering, send, smpp_connector, wait_status

pytestmark = pytest.mark.timeout(120)


def test_a_carrier_failing_one_in_ten_submits_still_delivers_everything(tmp_path: Path) -> None:
    with carrier(error_rate=0.1, timeout_rate=0.03) as flaky:
        submits: Counter[bytes] = Counter()
        flaky.on_submit = lambda r: submits.update([r.short_message])
        assert flaky.address is not None
        conn = {**smpp_connector("flaky", flaky.address[1]), "request_timeout": 0.5}
        routes = [{"connectors": ["flaky"]}]
        with delivering(tmp_path, connectors=[conn], routes=routes) as gw:
            t = gw.tenant(mode="live", balance_milli=10**7)
            ids = [
                send(gw, t.headers, to=f"+9198765{i:05d}", body=f"m{i}")["id"] for i in range(150)
            ]
            done = [wait_status(gw, t.headers, mid, FINAL, timeout=60) for mid in ids]
    assert Counter(m["status"] for m in done) == {"delivered": 150}
    retried = [m for m in done if any("retry" in (e["detail"] or "") for e in m["events"])]
    assert flaky.stats.errors > 0 and retried  # the faults really happened and were retried
    # A timeout means the carrier may have it: such a message can be sent twice, others not.
    assert sum(n - 1 for n in submits.values()) <= flaky.stats.timeouts


def test_when_the_primary_dies_mid_run_the_backup_takes_over(tmp_path: Path) -> None:
    with carrier() as backup, carrier() as primary:
        assert primary.address is not None and backup.address is not None
        conns: list[dict[str, Any]] = [
            {**smpp_connector("primary", primary.address[1]), "request_timeout": 1},
            smpp_connector("backup", backup.address[1]),
        ]
        routes = [{"connectors": ["primary", "backup"]}]
        with delivering(tmp_path, connectors=conns, routes=routes) as gw:
            t = gw.tenant(mode="live")
            first = [send(gw, t.headers, to=f"+9198111{i:05d}")["id"] for i in range(20)]
            for mid in first:
                wait_status(gw, t.headers, mid, FINAL)
            stop_now(primary)  # the SMSC goes away: its binds drop, it refuses reconnects
            later = [send(gw, t.headers, to=f"+9198222{i:05d}")["id"] for i in range(40)]
            done = [wait_status(gw, t.headers, mid, FINAL, timeout=60) for mid in later]
            state = gw.client.get("/readyz").json()
    assert {m["status"] for m in done} == {"delivered"}
    assert Counter(m["connector"] for m in done)["backup"] >= 30
    assert primary.stats.accepted >= 20
    assert state["checks"]["connectors"] == "ok"  # the backup keeps the gateway ready


def test_a_message_waiting_out_an_open_breaker_keeps_its_attempts_and_backoff(
    tmp_path: Path,
) -> None:
    with carrier() as healthy, carrier() as tripped:
        assert healthy.address is not None and tripped.address is not None
        conns = [smpp_connector("healthy", healthy.address[1]),
                 smpp_connector("tripped", tripped.address[1])]  # fmt: skip
        # +917000000003 is throttled twice, then delivered: two real retries after the wait.
        routes = [{"prefix": "+917000", "connectors": ["tripped"]}, {"connectors": ["healthy"]}]
        with delivering(tmp_path, connectors=conns, routes=routes) as gw:
            t = gw.tenant(mode="live", balance_milli=10**7)
            dispatcher = gw.services.delivery.dispatcher
            warm = send(gw, t.headers, to="+919812345678")["id"]  # both carriers are bound
            wait_status(gw, t.headers, warm, FINAL)
            # The carrier failed enough in a row to open its breaker for 3 s.
            breaker = CircuitBreaker(failure_threshold=1, open_seconds=3.0)
            breaker.record_failure(time.monotonic())
            dispatcher.breakers["tripped"] = breaker
            done = wait_status(gw, t.headers, send(gw, t.headers, to="+917000000003")["id"],
                               FINAL, timeout=30)  # fmt: skip
    assert (done["status"], done["connector"]) == ("delivered", "tripped")
    notes = [e["detail"] for e in done["events"] if e["detail"] and e["detail"] != "accepted"]
    waits = [n for n in notes if "no connector" in n]
    # It waited for the breaker's probe, not once a second meanwhile ...
    assert 1 <= len(waits) <= 2 and all(n.startswith("waiting ") for n in waits), notes
    # ... and the wait cost no attempt: the throttled tries are its first and second retries.
    throttled = [n for n in notes if "no connector" not in n]
    assert [n.split(" in ")[0] for n in throttled] == ["retry 1", "retry 2"], notes
