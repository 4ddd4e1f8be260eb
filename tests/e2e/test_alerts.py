"""[[alerts]] rules evaluated against the running gateway: fire, resolve, signed webhook, gauge."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from dakghar.observability.alerts import AlertEvaluator, alerts_component, parse_rules
from dakghar.settings import SettingsError
from dakghar.webhooks.signing import verify
from tests.e2e.test_delivery import FINAL, delivering, hook_receiver, send, wait_status


def test_rules_fire_and_resolve_with_signed_webhooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_SECRET", "s3cret")
    with hook_receiver() as (url, calls):
        alerts = [
            {"name": "credits", "kind": "credits_low", "below": 50, "account": "lowbudget",
             "webhook": url, "secret_env": "ALERT_SECRET"},
            {"name": "jio-rate", "kind": "delivery_rate", "carrier": "Jio", "below": 0.9,
             "minutes": 10, "min_messages": 2},
            {"name": "api-5xx", "kind": "api_errors", "above": 0},
            {"name": "queue", "kind": "queue_age", "above_seconds": 3600},
            {"name": "links", "kind": "connector_down"},
            {"name": "latency", "kind": "api_latency", "above_ms": 60000},
        ]  # fmt: skip
        with delivering(tmp_path, alerts=alerts) as gw:
            # the test drives evaluation itself instead of waiting for the timer
            start = alerts_component(gw.settings, interval=3600)
            stop = gw.client.portal.call(start, gw.services)
            ev: AlertEvaluator = gw.services.alerts
            poor = gw.tenant(mode="live", name="lowbudget", balance_milli=10_000)
            t = gw.tenant(mode="test")
            for _ in range(2):
                m = send(gw, t.headers, to="+917000000002")  # Jio, undelivered
                wait_status(gw, t.headers, m["id"], FINAL)
            gw.call(ev.evaluate)
            firing = {name for name, v in ev.firing().items() if v}
            assert firing == {"credits", "jio-rate"}
            assert 'dakghar_alerts_firing{alert="credits"} 1.0' in gw.client.get("/metrics").text

            gw.call(gw.services.store.update_account, poor.account.id, balance_milli=100_000)
            gw.call(ev.evaluate)
            assert ev.firing()["credits"] == 0.0
            deadline = time.monotonic() + 5
            while len(calls) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            gw.client.portal.call(stop)
    events = [json.loads(body) for body, _ in calls]
    assert [(e["type"], e["alert"]) for e in events] == [
        ("alert.firing", "credits"),
        ("alert.resolved", "credits"),
    ]
    assert "lowbudget" in events[0]["detail"]
    for body, header in calls:
        assert verify("s3cret", body, header, int(time.time()))


def test_bad_rules_are_refused_clearly() -> None:
    with pytest.raises(SettingsError, match="kind must be one of"):
        parse_rules([{"kind": "vibes"}])
    with pytest.raises(SettingsError, match="unknown keys"):
        parse_rules([{"kind": "queue_age", "above_seconds": 1, "colour": "red"}])


def test_the_prometheus_rules_file_only_uses_metrics_we_export(tmp_path: Path) -> None:
    rules = yaml.safe_load(Path("deploy/prometheus/alerts.yml").read_text())["groups"][0]["rules"]
    used = {
        re.sub(r"_(bucket|total|sum|count)$", "", name)
        for rule in rules
        for name in re.findall(r"dakghar_[a-z0-9_]+", rule["expr"])
    }
    with delivering(tmp_path) as gw:
        families = {f.name for f in gw.services.metrics.registry.collect()}
    assert used <= families, used - families
