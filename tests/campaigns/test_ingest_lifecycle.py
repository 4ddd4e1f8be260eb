"""Ingest in the background, staged until it commits: crash, cancel and answer-time behaviour.

Everything runs on the real app and store; the crash is a real ``kill -9`` of a
``dakghar campaigns create`` process in the middle of its ingest.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from dakghar.api.app import create_app
from dakghar.api.openapi import build_openapi
from tests.conftest import Gateway, Tenant, make_settings
from tests.e2e.test_delivery import delivering

pytestmark = pytest.mark.timeout(120)


def upload(gw: Gateway, t: Tenant, rows: int, **fields: Any) -> Any:
    data = "phone\n" + "".join(f"98{i:08d}\n" for i in range(rows))
    fields.setdefault("body", "Sale today")
    fields.setdefault("type", "transactional")
    return gw.client.post(
        "/v1/campaigns",
        files={"file": ("list.csv", data.encode(), "text/csv")},
        data={k: str(v) for k, v in fields.items()},
        headers=t.headers,
    )


def campaign(gw: Gateway, t: Tenant, cid: str) -> dict[str, Any]:
    c: dict[str, Any] = gw.client.get(f"/v1/campaigns/{cid}", headers=t.headers).json()
    return c


def until(gw: Gateway, t: Tenant, cid: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not done(c := campaign(gw, t, cid)):
        assert time.monotonic() < deadline, f"campaign is {c}"
        time.sleep(0.05)
    return c


def statuses(db: Path, cid: str) -> dict[str, int]:
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute(
            "SELECT status, COUNT(*) FROM messages WHERE campaign_id = ? GROUP BY status", (cid,)
        ).fetchall()
    finally:
        con.close()
    return {s: n for s, n in rows}


shift = 100 * 365 * 24 * 3600 * 1000  # campaigns.records.STAGE_SHIFT


def staged(db: Path, cid: str) -> int:
    con = sqlite3.connect(db, timeout=30)
    try:
        return int(
            con.execute(
                "SELECT COUNT(*) FROM messages WHERE campaign_id = ? AND next_attempt_at > ?",
                (cid, int(time.time() * 1000) + shift // 2),
            ).fetchone()[0]
        )
    finally:
        con.close()


def test_the_answer_comes_at_once_and_the_counts_grow_in_the_background(
    gateway: Gateway,
) -> None:
    t = gateway.tenant()
    started = time.monotonic()
    r = upload(gateway, t, 60_000)
    took = time.monotonic() - started
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "ingesting" and first["total"] < 60_000
    seen = {first["total"]}
    done = until(
        gateway, t, first["id"], lambda c: seen.add(c["total"]) or c["status"] != "ingesting"
    )
    assert len(seen) > 2  # counts were live, not only at the end
    assert (done["status"], done["total"], done["valid"], done["queued"]) == (
        "running", 60_000, 60_000, 60_000,
    )  # fmt: skip
    assert took < 5
    created = build_openapi()["paths"]["/v1/campaigns"]["post"]["responses"]["201"]
    schema = created["content"]["application/json"]["schema"]["properties"]["status"]
    assert "ingesting" in schema["enum"] and "failed" in schema["enum"]


def test_cancel_while_ingesting_stops_it_and_refunds_everything(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live", balance_milli=10**9)
    before = gateway.client.get("/v1/account", headers=t.headers).json()["balance"]
    r = upload(gateway, t, 100_000)
    assert r.status_code == 201 and r.json()["status"] == "ingesting"
    cid = r.json()["id"]
    canceled = gateway.client.post(f"/v1/campaigns/{cid}/cancel", headers=t.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    time.sleep(1.0)  # the ingest notices at its next chunk and cancels what it wrote since
    c = until(gateway, t, cid, lambda c: c["queued"] == 0)
    assert c["status"] == "canceled" and c["sent"] == 0
    db = Path(gateway.settings.database_url.removeprefix("sqlite:///"))
    assert set(statuses(db, cid)) <= {"canceled"}
    assert sum(statuses(db, cid).values()) < 100_000  # the ingest stopped early
    assert gateway.client.get("/v1/account", headers=t.headers).json()["balance"] == before
    again = gateway.client.post(f"/v1/campaigns/{cid}/cancel", headers=t.headers)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")


def test_a_crash_while_ingesting_leaves_a_failed_campaign_and_nothing_is_sent(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    db = tmp_path / "dakghar.db"
    with TestClient(create_app(settings)) as client:
        t = Gateway(client, settings).tenant(mode="live", balance_milli=10**9)
    balance = 10**9
    rows = tmp_path / "list.csv"
    rows.write_text("phone\n" + "".join(f"98{i:08d}\n" for i in range(400_000)))
    env = {
        **os.environ,
        "DAKGHAR_DATABASE_URL": settings.database_url,
        "DAKGHAR_DATA_DIR": str(tmp_path),
        "DAKGHAR_SECRET_KEY": settings.secret_key or "",
        "DAKGHAR_LOG_LEVEL": "warning",
    }
    cli = subprocess.Popen(
        [sys.executable, "-m", "dakghar", "campaigns", "create", str(rows), "--body", "Sale",
         "--type", "transactional", "--account", t.account.id, "--live", "--no-follow"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        cid = None
        while cid is None or sum(statuses(db, cid).values()) < 6000:
            assert time.monotonic() < deadline and cli.poll() is None, "no ingest to interrupt"
            time.sleep(0.02)
            if cid is None and db.exists():
                con = sqlite3.connect(db, timeout=30)
                found = con.execute("SELECT id FROM campaigns").fetchone()
                con.close()
                cid = found[0] if found else None
        os.kill(cli.pid, signal.SIGKILL)  # a crash: no cleanup of any kind
    finally:
        cli.wait(10)
    # The crash happened a while ago (longer than an ingest may stay silent).
    con = sqlite3.connect(db, timeout=30)
    con.execute("UPDATE campaigns SET updated_at = updated_at - 120000")
    con.commit()
    con.close()
    written = sum(statuses(db, cid).values())
    with delivering(tmp_path) as gw:  # the gateway restarts, dispatcher and carrier included
        c = campaign(gw, t, cid)
        assert (c["status"], c["queued"], c["canceled"]) == ("failed", 0, written)
        time.sleep(2.5)  # time for the dispatcher to send anything it could
        assert statuses(db, cid) == {"canceled": written}
        account = gw.client.get("/v1/account", headers=t.headers).json()
        assert account["balance"] * 1000 == balance  # every staged row refunded
        r = gw.client.post(f"/v1/campaigns/{cid}/cancel", headers=t.headers)
        assert (r.status_code, r.json()["code"]) == (409, "conflict")


def test_a_crash_after_the_commit_point_is_rolled_forward_at_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = tmp_path / "dakghar.db"
    with TestClient(create_app(settings)) as client:
        gw = Gateway(client, settings)
        t = gw.tenant()
        r = upload(gw, t, 12_000)
        done = until(gw, t, r.json()["id"], lambda c: c["status"] != "ingesting")
        cid = done["id"]
        while staged(db, cid):  # the release after the commit point has finished
            time.sleep(0.05)
    # What a crash between the commit and the end of the release leaves: committed, with
    # part of its rows still staged (a century ahead, records.STAGE_SHIFT).
    con = sqlite3.connect(db, timeout=30)
    con.execute(
        "UPDATE messages SET next_attempt_at = next_attempt_at + ?, expires_at = expires_at + ? "
        "WHERE rowid IN (SELECT rowid FROM messages WHERE campaign_id = ? LIMIT 7000)",
        (shift, shift, cid),
    )
    con.commit()
    con.close()
    with TestClient(create_app(settings)) as client:
        gw = Gateway(client, settings)
        c = campaign(gw, t, cid)
        assert (c["status"], c["queued"]) == ("running", 12_000)
        assert staged(db, cid) == 0  # every staged row is sendable again
