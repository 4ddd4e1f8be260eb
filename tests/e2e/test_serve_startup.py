"""``dakghar serve`` refusing to start: one line naming the setting, a non-zero exit.

Before, a bad connector, route or alert table surfaced as a uvicorn lifespan traceback of some
27 lines, and a port in use was found only after the demo banner and key had been printed.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from dakghar.cli import serve as serve_module
from dakghar.cli.main import cli
from dakghar.settings import Settings
from tests.e2e.serve_process import run_serve, serving

pytestmark = pytest.mark.timeout(90)

AIRTEL = """
[[connectors]]
name = "airtel"
type = "smpp"
host = "127.0.0.1"
port = 2775
system_id = "dakghar"
password_env = "AIRTEL_SMPP_PASSWORD"
"""


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_an_unset_password_variable_is_one_line_naming_the_connector(tmp_path: Path) -> None:
    done = run_serve(tmp_path, AIRTEL, DAKGHAR_LOG_LEVEL="info")
    assert done.returncode != 0
    assert one_line(done.stderr) == (
        "dakghar: error: connectors[0] (airtel): password_env names 'AIRTEL_SMPP_PASSWORD', "
        "which is not set"
    )


def test_a_route_to_an_unknown_connector_is_one_line(tmp_path: Path) -> None:
    toml = AIRTEL + '\n[[routes]]\nconnectors = ["jio"]\n'
    done = run_serve(tmp_path, toml, AIRTEL_SMPP_PASSWORD="x", DAKGHAR_LOG_LEVEL="info")
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert line.startswith("dakghar: error: routes"), line
    assert "jio" in line


def test_a_bad_connector_type_and_a_bad_alert_are_one_line(tmp_path: Path) -> None:
    done = run_serve(tmp_path, '[[connectors]]\nname = "x"\ntype = "carrier-pigeon"\n')
    assert done.returncode != 0
    assert one_line(done.stderr).startswith("dakghar: error: connectors[0] (x): unknown type")
    done = run_serve(tmp_path, '[[alerts]]\nkind = "weather"\n')
    assert done.returncode != 0
    assert one_line(done.stderr).startswith("dakghar: error: alerts[0]: kind must be one of")


def test_a_failure_inside_start_up_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The in-process simulator cannot bind: that happens inside the app's lifespan.
        done = run_serve(tmp_path, f"[simulator]\nport = {port}\n", "--demo")
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert line.startswith("dakghar: error: start-up failed: OSError:"), line
    assert "is running" not in done.stdout


def test_a_port_in_use_is_one_line_before_any_banner_or_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(tmp_path, "", "--demo", port=port, DAKGHAR_LOG_LEVEL="info")
    assert done.returncode != 0
    assert one_line(done.stderr) == (
        f"dakghar: error: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert "is running" not in done.stdout and "Demo key" not in done.stdout
    assert not (tmp_path / "dakghar-demo.key").exists()


def test_the_demo_banner_comes_once_serving(tmp_path: Path) -> None:
    # --no-delivery: the banner does not depend on the pipeline, only on the listener.
    with serving(tmp_path, "", "--demo", "--no-delivery") as served:
        text = served.stdout.read_text()
        assert "is running (sandbox demo)" in text
        assert f"API:       {served.url}" in text


def test_demo_allows_private_network_callbacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Settings] = []

    def create_app(settings: Settings, **kwargs: object) -> object:
        seen.append(settings)
        return object()

    monkeypatch.setattr(serve_module, "create_app", create_app)
    monkeypatch.setattr(serve_module, "run_server", lambda *args, **kwargs: None)
    monkeypatch.setenv("DAKGHAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAKGHAR_SECRET_KEY", "demo-test-" + "s" * 32)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args, allowed in (
        (["serve", "--port", "0"], False),
        (["serve", "--demo", "--port", "0"], True),
    ):
        result = runner.invoke(cli, args, obj={})
        assert result.exit_code == 0, result.output
        assert seen.pop().webhooks.allow_private_networks is allowed
    assert "allow_private_networks" in runner.invoke(cli, ["serve", "--help"]).output


def test_an_smpp_password_over_eight_octets_is_one_line_at_start(tmp_path: Path) -> None:
    # Before: accepted, and the bind's encode error silently ended the connector's loop.
    done = run_serve(tmp_path, AIRTEL, AIRTEL_SMPP_PASSWORD="ninechars", DAKGHAR_LOG_LEVEL="info")
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert line.startswith("dakghar: error: connectors[0] (airtel): ") and "password" in line
    assert "ninechars" not in line and "8" in line
