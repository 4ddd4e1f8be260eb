"""The whole pipeline in one process: API -> queue -> dispatcher -> SMPP -> simulated carrier.

Nothing here is mocked: the app runs with its delivery component, messages cross real SMPP
sessions on loopback to the built-in simulator (sandbox) or to a second, separately started
simulator playing a live carrier, and webhooks reach a real local HTTP receiver.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from dakghar.api.app import create_app
from dakghar.cli.main import cli
from dakghar.pipeline.runtime import delivery_component
from dakghar.settings import WebhookSettings
from dakghar.webhooks.signing import verify
from tests.api.test_operations import admin_key
from tests.conftest import Gateway, make_settings
from tests.e2e.carrier import carrier

FAST_SIM = {"receipt_delay_ms": [5, 30], "seed": 7}
FINAL = {"delivered", "undelivered", "failed", "expired", "rejected", "canceled"}


@contextmanager
def delivering(tmp_path: Path, **overrides: Any) -> Iterator[Gateway]:
    overrides.setdefault("simulator", FAST_SIM)
    # The webhook receivers here are on loopback, which callbacks reach only when allowed.
    overrides.setdefault("webhooks", WebhookSettings(allow_private_networks=True))
    settings = make_settings(tmp_path, **overrides)
    app = create_app(settings, components=[delivery_component(settings)])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Gateway(client, settings)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    with delivering(tmp_path) as gateway:
        yield gateway


def send(gw: Gateway, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("body", "Your order has shipped")
    r = gw.client.post("/v1/messages", json=body, headers=headers)
    assert r.status_code == 202, r.text
    result: dict[str, Any] = r.json()
    return result


def wait_status(
    gw: Gateway, headers: dict[str, str], message_id: str, wanted: set[str], timeout: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        m: dict[str, Any] = gw.client.get(f"/v1/messages/{message_id}", headers=headers).json()
        if m["status"] in wanted:
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"still {m['status']} after {timeout}s: {m['events']}")
        time.sleep(0.05)


def statuses(m: dict[str, Any]) -> list[str]:
    return [e["status"] for e in m["events"]]


def test_a_sandbox_message_is_delivered_through_the_simulated_carrier(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    m = send(gw, t.headers, to="+919812345678")
    done = wait_status(gw, t.headers, m["id"], FINAL)
    assert done["status"] == "delivered"
    assert done["connector"] == "simulator"
    assert statuses(done) == ["queued", "sending", "sent", "delivered"]
    assert gw.client.get("/readyz").json()["checks"]["connectors"] == "ok"


def test_a_long_unicode_message_is_delivered_once_every_part_is(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    m = send(gw, t.headers, to="+919812345678", body="नमस्ते, आपका पार्सल रास्ते में है। " * 5)
    assert m["segments"] > 1
    done = wait_status(gw, t.headers, m["id"], FINAL)
    assert done["status"] == "delivered"
    sim = gw.services.delivery.simulator
    assert sim.stats.receipts_sent >= m["segments"]


@pytest.mark.parametrize(
    ("to", "status", "error_code"),
    [
        ("+917000000001", "failed", "carrier_rejected"),
        ("+917000000002", "undelivered", "undelivered"),
    ],
)
def test_magic_numbers_end_as_the_api_table_says(
    gw: Gateway, to: str, status: str, error_code: str
) -> None:
    t = gw.tenant(mode="test")
    m = send(gw, t.headers, to=to)
    done = wait_status(gw, t.headers, m["id"], FINAL)
    assert (done["status"], done["error_code"]) == (status, error_code)


def test_a_throttled_message_is_retried_and_then_delivered(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    m = send(gw, t.headers, to="+917000000003")
    done = wait_status(gw, t.headers, m["id"], FINAL, timeout=30)
    assert done["status"] == "delivered"
    retries = [e for e in done["events"] if "retry" in (e["detail"] or "")]
    assert [e["status"] for e in retries] == ["sending", "sending"], done["events"]
    assert retries[0]["detail"].startswith("retry 1 ")
    assert "throttled" in retries[0]["detail"].lower()
    assert retries[0]["detail"].endswith("(simulator)")
    # API.md: status never moves backwards, not even for a retry
    order = ["scheduled", "queued", "sending", "sent", "delivered"]
    ranks = [order.index(e["status"]) for e in done["events"]]
    assert ranks == sorted(ranks), done["events"]


def test_a_message_without_a_report_stays_sent(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    silent = send(gw, t.headers, to="+917000000005")
    normal = send(gw, t.headers, to="+919812345678")
    wait_status(gw, t.headers, normal["id"], FINAL)
    time.sleep(0.3)
    m = gw.client.get(f"/v1/messages/{silent['id']}", headers=t.headers).json()
    assert m["status"] == "sent"


class Hooks(BaseHTTPRequestHandler):
    calls: list[tuple[bytes, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.calls.append((body, self.headers["Dakghar-Signature"]))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def hook_receiver() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    server.calls = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", server.calls  # type: ignore[attr-defined]
    finally:
        server.shutdown()


def test_webhooks_by_default_post_only_the_final_status(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    with hook_receiver() as (url, calls):
        m = send(gw, t.headers, to="+919812345678", callback_url=url)
        wait_status(gw, t.headers, m["id"], FINAL)
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # anything else would have come by now
    assert [json.loads(body)["status"] for body, _ in calls] == ["delivered"]


def test_webhook_events_all_posts_every_status_change_including_sending(gw: Gateway) -> None:
    t = gw.tenant(mode="test", webhook_events="all")
    with hook_receiver() as (url, calls):
        m = send(gw, t.headers, to="+917000000003", callback_url=url)  # throttled twice
        wait_status(gw, t.headers, m["id"], FINAL, timeout=30)
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    # the two retries are events on the message, not status changes: no webhook for them
    assert [json.loads(body)["status"] for body, _ in calls] == ["sending", "sent", "delivered"]


def test_webhooks_report_each_status_in_order_signed(gw: Gateway) -> None:
    t = gw.tenant(mode="test", webhook_events="sent")
    with hook_receiver() as (url, calls):
        m = send(gw, t.headers, to="+919812345678", callback_url=url, reference="order-9")
        wait_status(gw, t.headers, m["id"], FINAL)
        deadline = time.monotonic() + 10
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    events = [json.loads(body) for body, _ in calls]
    assert [e["status"] for e in events] == ["sent", "delivered"]
    assert {e["message_id"] for e in events} == {m["id"]}
    assert events[0]["reference"] == "order-9"
    assert len({e["event_id"] for e in events}) == 2
    secret = t.account.webhook_secret
    for body, header in calls:
        assert verify(secret, body, header, int(time.time()))


def test_paused_sending_holds_messages_and_resume_releases_them(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    store = gw.services.store
    gw.call(store.set_switch, "connector", "simulator", True)
    gw.call(gw.services.switches.refresh)
    m = send(gw, t.headers, to="+919812345678")
    time.sleep(1.5)
    held = gw.client.get(f"/v1/messages/{m['id']}", headers=t.headers).json()
    assert held["status"] in {"queued", "sending"}
    gw.call(store.set_switch, "connector", "simulator", False)
    gw.call(gw.services.switches.refresh)
    assert wait_status(gw, t.headers, m["id"], FINAL)["status"] == "delivered"


def test_live_traffic_without_routes_fails_with_no_route_and_is_refunded(gw: Gateway) -> None:
    t = gw.tenant(mode="live", balance_milli=10_000)
    m = send(gw, t.headers, to="+919812345678")
    # Charged at accept (the balance itself may already be refunded: the dispatcher can fail
    # the message before a second request reads the account).
    assert m["price"] == 1.0
    done = wait_status(gw, t.headers, m["id"], FINAL)
    assert (done["status"], done["error_code"]) == ("failed", "no_route")
    assert gw.client.get("/v1/account", headers=t.headers).json()["balance"] == 10.0


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smpp_connector(name: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "smpp",
        "host": "127.0.0.1",
        "port": port,
        "system_id": "dakghar",
        "password": "secret",
        "window": 50,
        "rate": 500,
    }


def test_live_traffic_follows_its_route_and_fails_over_when_the_primary_is_down(
    tmp_path: Path,
) -> None:
    with carrier() as backup:
        connectors = [
            smpp_connector("primary", dead_port()),
            smpp_connector("backup", backup.address[1]),
        ]  # type: ignore[index]
        routes = [{"country": "IN", "connectors": ["primary", "backup"]}]
        with delivering(tmp_path, connectors=connectors, routes=routes) as gw:
            t = gw.tenant(mode="live")
            ids = [send(gw, t.headers, to=f"+9198123456{i:02d}")["id"] for i in range(10)]
            for mid in ids:
                done = wait_status(gw, t.headers, mid, FINAL, timeout=30)
                assert (done["status"], done["connector"]) == ("delivered", "backup")
            assert backup.stats.accepted == 10
            other = send(gw, t.headers, to="+14155550123")
            done = wait_status(gw, t.headers, other["id"], FINAL)
            assert done["error_code"] == "no_route"


def test_while_no_carrier_is_bound_live_messages_wait_queued_and_sandbox_ones_flow(
    tmp_path: Path,
) -> None:
    from dakghar.core.keys import generate_key
    from dakghar.store.base import ApiKey, now_ms

    port = dead_port()
    routes = [{"country": "IN", "connectors": ["carrier"]}]
    with delivering(tmp_path, connectors=[smpp_connector("carrier", port)], routes=routes) as gw:
        live = gw.tenant(mode="live")
        test_key = generate_key(gw.settings.secret, "test")  # the same account's sandbox key
        gw.call(gw.services.store.create_api_key, ApiKey(test_key.key_id, live.account.id,
                "test", test_key.key_hash, None, now_ms(), None))  # fmt: skip
        sandbox = {"Authorization": f"Bearer {test_key.key}"}
        ids = [send(gw, live.headers, to=f"+9198123456{i:02d}")["id"] for i in range(3)]
        done = wait_status(gw, sandbox, send(gw, sandbox, to="+919812345678")["id"], FINAL)
        assert done["status"] == "delivered"  # sandbox traffic does not wait for the carrier
        time.sleep(1.5)  # several claim rounds and sweeps
        for mid in ids:
            # Not claimed and bounced back as retries: nothing could have sent them.
            m = gw.client.get(f"/v1/messages/{mid}", headers=live.headers).json()
            assert (m["status"], statuses(m)) == ("queued", ["queued"])
        dispatcher = gw.services.delivery.dispatcher
        assert dispatcher.state()["live_blocked"] is True
        # One outlives its validity while it waits: it is expired, not kept queued.
        outlived, ids = ids[0], ids[1:]
        sql, past = "UPDATE messages SET expires_at = ? WHERE id = ?", (now_ms() - 1, outlived)
        gw.call(gw.services.store._write, lambda c: c.execute(sql, past))
        dispatcher.expiry_scan, dispatcher._expiry_due = 0.2, 0.0
        done = wait_status(gw, live.headers, outlived, FINAL, timeout=10)
        assert (done["status"], done["error_code"]) == ("expired", "expired")
        with carrier(port=port) as sim:
            for mid in ids:
                done = wait_status(gw, live.headers, mid, FINAL, timeout=30)
                assert (done["status"], done["connector"]) == ("delivered", "carrier")
            assert sim.stats.accepted == 2


def test_admins_see_connector_and_breaker_state(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    assert gw.client.get("/v1/connectors", headers=t.headers).status_code == 403
    admin = admin_key(gw, t.account.id)
    wait_status(gw, t.headers, send(gw, t.headers, to="+919812345678")["id"], FINAL)
    state = gw.client.get("/v1/connectors", headers=admin).json()
    sim = state["connectors"]["simulator"]
    assert sim["ready"] is True
    assert sim["breaker"]["state"] == "closed"
    assert state["stats"]["sent"] >= 1
    r = gw.client.post("/v1/switches/connectors/nope/pause", headers=admin)
    assert r.status_code == 404
    metrics = gw.client.get("/metrics").text
    assert 'dakghar_connector_up{connector="simulator"} 1.0' in metrics
    assert 'dakghar_connector_events_total{connector="simulator",event="submitted"}' in metrics
    assert 'dakghar_message_status_changes_total{carrier="Vi",connector="simulator"' in metrics


def test_dakghar_status_shows_the_running_gateways_connectors(gw: Gateway) -> None:
    env = {
        "DAKGHAR_DATA_DIR": gw.settings.data_dir,
        "DAKGHAR_DATABASE_URL": gw.settings.database_url,
        "DAKGHAR_SECRET_KEY": gw.settings.secret_key or "",
    }
    deadline = time.monotonic() + 10
    while True:
        result = CliRunner().invoke(cli, ["status"], env=env)
        assert result.exit_code == 0, result.output
        state = json.loads(result.output)
        if isinstance(state["gateway"], dict) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    sim = state["gateway"]["connectors"]["simulator"]
    assert sim["ready"] is True and sim["breaker"]["state"] == "closed"
    assert sim["binds"][0]["bound"] is True


def test_messages_queued_by_another_process_are_found_and_delivered(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    env = {
        "DAKGHAR_DATA_DIR": gw.settings.data_dir,
        "DAKGHAR_DATABASE_URL": gw.settings.database_url,
        "DAKGHAR_SECRET_KEY": gw.settings.secret_key or "",
    }
    result = CliRunner().invoke(cli, ["otp", "send", "+919812345678", "--account", t.account.id],
                                env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = gw.client.get("/v1/messages?limit=1", headers=t.headers).json()["data"]
    assert len(listed) == 1 and listed[0]["type"] == "otp"
    done = wait_status(gw, t.headers, listed[0]["id"], FINAL, timeout=10)
    assert done["status"] == "delivered"


def test_after_a_rotation_webhooks_carry_both_signatures_for_a_day(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    first = gw.client.get("/v1/account/webhook-secret", headers=t.headers).json()
    assert first == {"webhook_secret": t.account.webhook_secret, "previous_expires_at": None}
    r = gw.client.post("/v1/account/webhook-secret/rotate", headers=t.headers)
    assert r.status_code == 201
    new = r.json()["webhook_secret"]
    assert new.startswith("whsec_") and new != first["webhook_secret"]
    until = datetime.fromisoformat(r.json()["previous_expires_at"])
    assert 23.9 * 3600 < (until - datetime.now(UTC)).total_seconds() <= 24 * 3600
    assert gw.client.get("/v1/account/webhook-secret", headers=t.headers).json() == r.json()
    with hook_receiver() as (url, calls):
        m = send(gw, t.headers, to="+919812345678", callback_url=url)
        wait_status(gw, t.headers, m["id"], FINAL)
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
    [(body, header)] = calls
    assert header.count("v1=") == 2
    now = int(time.time())
    assert verify(new, body, header, now) and verify(first["webhook_secret"], body, header, now)
