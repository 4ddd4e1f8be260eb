"""Who may read ``/metrics`` (docs/observability.md, "Access"), against a real ``dakghar serve``.

Before, ``/metrics`` answered anyone who could reach the API's port, whatever ``[metrics]`` said.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dakghar.api.app import create_app
from dakghar.settings import MetricsSettings, Settings
from tests.e2e.serve_process import get, run_serve, serving
from tests.e2e.server import free_port

pytestmark = pytest.mark.timeout(90)

TOKEN = "metrics-token-" + "t" * 20
WITH_TOKEN = '[metrics]\ntoken_env = "DK_METRICS_TOKEN"\n'


def test_a_metrics_token_is_required_when_configured(tmp_path: Path) -> None:
    with serving(tmp_path, WITH_TOKEN, "--no-delivery", DK_METRICS_TOKEN=TOKEN) as served:
        url = f"{served.url}/metrics"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            status, body, answer = get(url, headers)
            assert status == 401, headers
            assert answer["content-type"] == "application/problem+json"
            assert json.loads(body)["code"] == "unauthorized"
        status, body, _ = get(url, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and b"dakghar_http_requests" in body


def test_a_token_variable_that_is_not_set_stops_the_start(tmp_path: Path) -> None:
    done = run_serve(tmp_path, WITH_TOKEN, "--no-delivery")
    assert done.returncode != 0
    assert done.stderr.strip() == (
        "dakghar: error: metrics: token_env names 'DK_METRICS_TOKEN', which is not set"
    )


def test_metrics_on_their_own_listener_only(tmp_path: Path) -> None:
    port = free_port()
    toml = f'[metrics]\nhost = "127.0.0.1"\nport = {port}\n'
    with serving(tmp_path, toml, "--no-delivery") as served:
        status, body, _ = get(f"{served.url}/metrics")
        assert status == 404, body
        assert get(f"{served.url}/healthz")[0] == 200
        status, body, _ = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and b"dakghar_http_requests" in body
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 404
        assert get(f"http://127.0.0.1:{port}/v1/messages")[0] == 404


def test_metrics_are_open_on_a_loopback_api_listener(tmp_path: Path) -> None:
    with serving(tmp_path, "", "--no-delivery") as served:
        status, body, _ = get(f"{served.url}/metrics")
        assert status == 200 and b"dakghar_http_requests" in body


def test_beyond_loopback_without_a_token_only_loopback_peers_are_answered(tmp_path: Path) -> None:
    # The app's rule alone (no socket is bound beyond loopback in tests): TestClient's peer is
    # "testclient", not a loopback address.
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/m.db",
        data_dir=str(tmp_path),
        secret_key="m-" + "k" * 40,
        host="0.0.0.0",
    )
    with TestClient(create_app(settings)) as client:
        answer = client.get("/metrics")
        assert answer.status_code == 403
        assert answer.json()["code"] == "forbidden"
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        assert client.get("/metrics").status_code == 200


def test_a_token_admits_remote_peers_beyond_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DK_METRICS_TOKEN", TOKEN)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/m.db",
        data_dir=str(tmp_path),
        secret_key="m-" + "k" * 40,
        host="0.0.0.0",
        metrics=MetricsSettings(token_env="DK_METRICS_TOKEN"),
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
