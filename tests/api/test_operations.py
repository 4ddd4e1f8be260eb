"""Kill switches and operator views through the API and the CLI, against the real store."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from dakghar.core.keys import generate_key
from dakghar.core.message import FAILED_STATUSES, LANES, MessageType
from dakghar.store.base import ApiKey, StatusChange, now_ms
from tests.conftest import Gateway

SEND = {"to": "+919812345678", "body": "hello"}


def admin_key(gw: Gateway, account_id: str) -> dict[str, str]:
    new = generate_key(gw.settings.secret, "live")
    gw.call(
        gw.services.store.create_api_key,
        ApiKey(new.key_id, account_id, "live", new.key_hash, None, now_ms(), None, "admin"),
    )
    return {"Authorization": f"Bearer {new.key}"}


def test_an_account_can_pause_and_resume_its_own_sending(gateway: Gateway) -> None:
    t = gateway.tenant()
    r = gateway.client.post("/v1/account/pause", headers=t.headers)
    assert r.status_code == 200 and r.json()["sending_paused"] is True
    blocked = gateway.client.post("/v1/messages", json=SEND, headers=t.headers)
    assert blocked.status_code == 503 and blocked.json()["code"] == "sending_paused"
    gateway.client.post("/v1/account/resume", headers=t.headers)
    assert gateway.client.post("/v1/messages", json=SEND, headers=t.headers).status_code == 202
    assert gateway.client.post("/v1/account/explode", headers=t.headers).status_code == 404


def test_global_switches_need_the_admin_scope(gateway: Gateway) -> None:
    t = gateway.tenant()
    r = gateway.client.post("/v1/switches/global/pause", headers=t.headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    admin = admin_key(gateway, t.account.id)
    assert gateway.client.post("/v1/switches/global/pause", headers=admin).status_code == 200
    other = gateway.tenant(name="other")
    blocked = gateway.client.post("/v1/messages", json=SEND, headers=other.headers)
    assert blocked.status_code == 503 and blocked.json()["code"] == "sending_paused"
    paused = gateway.client.get("/v1/switches", headers=admin).json()["paused"]
    assert paused == [{"scope": "global", "name": "*"}]
    gateway.client.post("/v1/switches/connectors/smsc-a/pause", headers=admin)
    gateway.client.post("/v1/switches/global/resume", headers=admin)
    assert gateway.client.post("/v1/messages", json=SEND, headers=other.headers).status_code == 202
    paused = gateway.client.get("/v1/switches", headers=admin).json()["paused"]
    assert paused == [{"scope": "connector", "name": "smsc-a"}]
    assert gateway.client.post("/v1/switches/global/x/pause", headers=admin).status_code == 404


def test_the_cli_pauses_an_account_and_reports_it_in_status(tmp_path: Path) -> None:
    env = {
        "DAKGHAR_DATA_DIR": str(tmp_path),
        "DAKGHAR_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "PATH": "/usr/bin:/bin",
    }

    def dakghar(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "dakghar", *args],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    acc = dakghar("accounts", "create", "acme", "--balance", "10")
    assert acc.startswith("acc_")
    assert dakghar("keys", "create", acc, "--sandbox").startswith("test_")
    assert "paused" in dakghar("pause", "--account", acc)
    assert '"scope": "account"' in dakghar("status")
    dakghar("resume", "--account", acc)
    assert '"paused": []' in dakghar("status")
    bad = subprocess.run([sys.executable, "-m", "dakghar", "pause"], env=env, capture_output=True,
                         text=True)  # fmt: skip
    assert bad.returncode == 2 and "choose exactly one" in bad.stderr


def test_api_key_rate_settings_are_the_default_for_new_accounts(tmp_path: Path) -> None:
    (tmp_path / "dakghar.toml").write_text("[api]\nkey_rate_per_second = 7\nkey_burst = 9\n")
    env = {
        "DAKGHAR_DATA_DIR": str(tmp_path),
        "DAKGHAR_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "DAKGHAR_CONFIG": str(tmp_path / "dakghar.toml"),
        "PATH": "/usr/bin:/bin",
    }

    def dakghar(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dakghar", *args], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip

    made = dakghar("accounts", "create", "acme")
    assert "no --sender" in made.stderr  # it will need a sender on every message
    shown = dakghar("accounts", "show", made.stdout.strip()).stdout
    assert '"rate_per_second": 7' in shown and '"rate_burst": 9' in shown
    own = dakghar("accounts", "create", "own", "--rate", "3", "--burst", "4", "--sender", "ACME")
    shown = dakghar("accounts", "show", own.stdout.strip()).stdout
    assert '"rate_per_second": 3' in shown and own.stderr == ""


def test_the_dashboard_counts_a_rejected_campaign_message_as_failed(gateway: Gateway) -> None:
    t = gateway.tenant()
    r = gateway.client.post(
        "/v1/campaigns",
        files={"file": ("list.csv", b"phone\n9812345678\n9812345679\n", "text/csv")},
        data={"body": "Sale today", "type": "transactional"},
        headers=t.headers,
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    deadline = time.monotonic() + 10
    while gateway.client.get(f"/v1/campaigns/{cid}", headers=t.headers).json()["status"] in (
        "ingesting",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ids = [m["id"] for m in gateway.client.get("/v1/messages", headers=t.headers).json()["data"]]
    rejected = StatusChange(ids[0], "rejected", error_code="carrier_rejected")
    gateway.call(gateway.services.store.apply, [rejected])
    board = gateway.client.get("/v1/dashboard", headers=admin_key(gateway, t.account.id)).json()
    [row] = [c for c in board["campaigns"] if c["id"] == cid]
    assert row["failed"] == 1


def test_failure_statuses_and_lanes_have_one_definition() -> None:
    assert {s.value for s in FAILED_STATUSES} == {"undelivered", "expired", "rejected", "failed"}
    assert [(lane.label, int(lane)) for lane in LANES] == [
        ("otp", 0), ("transactional", 1), ("promotional", 2),
    ]  # fmt: skip
    assert [MessageType(lane.label).lane for lane in LANES] == list(LANES)


def test_accounts_are_listed_updated_and_shown_by_name_in_credits_and_iso_times(
    tmp_path: Path,
) -> None:
    env = {
        "DAKGHAR_DATA_DIR": str(tmp_path),
        "DAKGHAR_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "PATH": "/usr/bin:/bin",
    }

    def dakghar(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "dakghar", *args], env=env,
                              capture_output=True, text=True, check=True).stdout  # fmt: skip

    acc = dakghar("accounts", "create", "acme", "--balance", "10", "--sender", "ACMEIN").strip()
    dakghar("accounts", "create", "other", "--sender", "OTHER")
    listed = dakghar("accounts", "list").splitlines()
    assert [line.split()[:2] for line in listed] == [[acc, "acme"], [listed[1].split()[0], "other"]]
    assert "balance 10.0" in listed[0] and "sender ACMEIN" in listed[0]
    updated = dakghar("accounts", "update", acc, "--balance", "2.5", "--segment-limit", "3",
                      "--webhook-events", "all", "--smart-encoding",
                      "--retention-days", "7")  # fmt: skip
    assert '"balance": 2.5' in updated and '"segment_limit": 3' in updated
    assert '"retention_days": 7' in updated
    assert '"webhook_events": "all"' in updated and '"smart_encoding": true' in updated
    shown = dakghar("accounts", "show", "acme")  # by name
    assert f'"id": "{acc}"' in shown and '"balance": 2.5' in shown
    assert '"price_per_segment": 1.0' in shown
    assert re.search(r'"created_at": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"', shown)
    bad = subprocess.run([sys.executable, "-m", "dakghar", "accounts", "update", acc], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "at least one setting" in bad.stderr
