"""Signals on a real ``dakghar serve`` started on its own pre-bound sockets.

SIGHUP re-reads the routes (installed by the delivery runtime on the server's loop); SIGTERM
stops the gateway after a graceful shutdown (uvicorn then re-raises the signal, so the exit is
"killed by SIGTERM", as with ``uvicorn.run``).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.carrier import carrier
from tests.e2e.serve_process import serving

pytestmark = pytest.mark.timeout(90)

CONNECTOR = """
[[connectors]]
name = "carrier"
type = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "dakghar"
password = "secret"
"""
ROUTE = '\n[[routes]]\nconnectors = ["carrier"]\n'


def _events(stderr: Path) -> list[dict[str, object]]:
    lines = stderr.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_sigterm_stops_serve_cleanly(tmp_path: Path) -> None:
    with serving(tmp_path, "", "--no-delivery") as served:
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(15) in (0, -signal.SIGTERM)
    assert "Traceback" not in served.stderr.read_text()


def test_sighup_reloads_the_routes(tmp_path: Path) -> None:
    with carrier() as sim:
        assert sim.address is not None
        toml = CONNECTOR.format(port=sim.address[1]) + ROUTE
        env = {"DAKGHAR_LOG_LEVEL": "info", "DAKGHAR_LOG_FORMAT": "json"}
        with serving(tmp_path, toml, **env) as served:
            (tmp_path / "dakghar.toml").write_text(toml + ROUTE)
            served.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while not _reloaded(served.stderr):
                assert time.monotonic() < deadline, served.stderr.read_text()[-2000:]
                assert served.proc.poll() is None, "SIGHUP stopped the gateway"
                time.sleep(0.1)
            assert _reloaded(served.stderr)[-1]["routes"] == 2
            assert served.proc.poll() is None


def _reloaded(stderr: Path) -> list[dict[str, object]]:
    return [e for e in _events(stderr) if e.get("event") == "routes reloaded"]


def test_a_reload_refuses_a_route_to_the_simulator_and_keeps_the_running_routes(
    tmp_path: Path,
) -> None:
    with carrier() as sim:
        assert sim.address is not None
        toml = CONNECTOR.format(port=sim.address[1]) + ROUTE
        env = {"DAKGHAR_LOG_LEVEL": "info", "DAKGHAR_LOG_FORMAT": "json"}
        with serving(tmp_path, toml, **env) as served:
            bad = '\n[[routes]]\ncountry = "IN"\nconnectors = ["simulator"]\n'
            (tmp_path / "dakghar.toml").write_text(toml + bad)
            served.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            refused: list[dict[str, object]] = []
            while not refused:
                assert time.monotonic() < deadline, served.stderr.read_text()[-2000:]
                refused = [
                    e for e in _events(served.stderr) if e.get("event") == "routes not reloaded"
                ]
                time.sleep(0.1)
            assert "simulated carrier" in str(refused[-1]["error"])
            assert not _reloaded(served.stderr) and served.proc.poll() is None


def test_dakghar_reload_signals_the_gateway_of_its_data_directory_only(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.e2e.serve_process import serve_env

    with carrier() as sim:
        assert sim.address is not None
        toml = CONNECTOR.format(port=sim.address[1]) + ROUTE
        env = {"DAKGHAR_LOG_LEVEL": "info", "DAKGHAR_LOG_FORMAT": "json"}
        with serving(tmp_path, toml, **env) as served:
            assert (tmp_path / "dakghar.pid").read_text().strip() == str(served.proc.pid)
            (tmp_path / "dakghar.toml").write_text(toml + ROUTE)
            done = subprocess.run(
                [sys.executable, "-m", "dakghar", "--config", str(tmp_path / "dakghar.toml"),
                 "reload"],
                env=serve_env(tmp_path), capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert f"pid {served.proc.pid}" in done.stdout
            deadline = time.monotonic() + 10
            while not _reloaded(served.stderr):
                assert time.monotonic() < deadline, served.stderr.read_text()[-2000:]
                time.sleep(0.1)
            assert _reloaded(served.stderr)[-1]["routes"] == 2
    assert not (tmp_path / "dakghar.pid").exists()  # removed at exit
    other = tmp_path / "elsewhere"
    other.mkdir()
    done = subprocess.run([sys.executable, "-m", "dakghar", "reload"], env=serve_env(other),
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode != 0 and "no running 'dakghar serve'" in done.stderr
