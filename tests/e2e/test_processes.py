"""`dakghar serve` on two processes: the layout, and what happens when either one dies.

The API process starts the delivery process (dispatcher, connectors, simulator, webhooks) and
watches it; these tests look at both through `dakghar status`, the store and the simulated
carrier, never through the gateway's internals.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import msgspec
import pytest

from tests.e2e.carrier import carrier
from tests.e2e.serve_process import Served, serve_env, serving

pytestmark = pytest.mark.timeout(120)

CONNECTOR = """
[[connectors]]
name = "carrier"
type = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "dakghar"
password = "secret"
window = 50
rate = 0

[[routes]]
connectors = ["carrier"]
"""


def cli(tmp: Path, *args: str) -> str:
    return subprocess.check_output(
        [sys.executable, "-m", "dakghar.cli.main", "--config", str(tmp / "dakghar.toml"), *args],
        env=serve_env(tmp),
        text=True,
    ).strip()


def live_key(tmp: Path) -> str:
    account = cli(tmp, "accounts", "create", "p", "--sender", "DKGHAR", "--balance", "100000",
                  "--rate", "100000", "--burst", "100000")  # fmt: skip
    return cli(tmp, "keys", "create", account, "--live")


def post_batch(served: Served, key: str, start: int, n: int) -> list[str]:
    body = json.dumps(
        {"messages": [{"to": f"+9198{i:08d}", "body": f"p {i}"} for i in range(start, start + n)]}
    ).encode()
    req = urllib.request.Request(
        f"{served.url}/v1/messages/batch",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return [m["id"] for m in json.loads(r.read())["accepted"]]


def status(tmp: Path) -> dict[str, object]:
    out: dict[str, object] = json.loads(cli(tmp, "status"))
    return out


def processes(tmp: Path) -> list[dict[str, object]]:
    deadline = time.monotonic() + 15
    while True:
        gateway = status(tmp)["gateway"]
        if isinstance(gateway, dict):
            procs: list[dict[str, object]] = gateway["processes"]
            return procs
        assert time.monotonic() < deadline, gateway
        time.sleep(0.2)


def delivered(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        sql = "SELECT count(*) FROM messages WHERE status = 'delivered'"
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has stopped; only its exit status is left


def test_serve_runs_the_api_and_the_delivery_side_as_two_processes(tmp_path: Path) -> None:
    base = os.nice(0)  # what `serve` inherits from this test
    with serving(tmp_path, "", "--demo") as served:
        layout = processes(tmp_path)
        assert layout[0] == {"pid": served.proc.pid, "runs": ["api"], "nice": base}
        assert layout[1]["runs"] == ["dispatcher"] and layout[1]["pid"] != served.proc.pid
        assert layout[1]["nice"] == base  # [server] delivery_nice is 0 unless set


def test_delivery_nice_lowers_the_delivery_sides_priority_below_the_apis(tmp_path: Path) -> None:
    base = os.nice(0)
    with serving(tmp_path, "[server]\ndelivery_nice = 5\n", "--demo"):
        assert [p["nice"] for p in processes(tmp_path)] == [base, min(19, base + 5)]


def test_a_delivery_nice_out_of_range_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "dakghar.toml").write_text("[server]\ndelivery_nice = 20\n")
    out = subprocess.run(
        [sys.executable, "-m", "dakghar.cli.main", "--config", str(tmp_path / "dakghar.toml"),
         "serve", "--demo"],
        env=serve_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "server.delivery_nice" in lines[0], out.stderr


def test_inline_delivery_runs_everything_in_one_process(tmp_path: Path) -> None:
    with serving(tmp_path, '[server]\ndelivery = "inline"\n', "--demo") as served:
        expected = {"pid": served.proc.pid, "runs": ["api", "dispatcher"], "nice": os.nice(0)}
        assert processes(tmp_path) == [expected]


def test_a_killed_delivery_process_is_restarted_and_nothing_is_lost(tmp_path: Path) -> None:
    with carrier(receipt_delay_ms=(1.0, 5.0)) as sim:
        assert sim.address is not None
        toml = CONNECTOR.format(port=sim.address[1])
        (tmp_path / "dakghar.toml").write_text(toml)
        key = live_key(tmp_path)
        with serving(tmp_path, toml) as served:
            first = processes(tmp_path)[1]["pid"]
            assert isinstance(first, int)
            ids = post_batch(served, key, 0, 1000) + post_batch(served, key, 1000, 1000)
            deadline = time.monotonic() + 30
            while sim.stats.accepted < 300:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            os.kill(first, signal.SIGKILL)
            ids += post_batch(served, key, 2000, 500)  # accepted while it is down
            deadline = time.monotonic() + 60
            while delivered(tmp_path / "serve.db") < len(ids):
                assert time.monotonic() < deadline, status(tmp_path)
                time.sleep(0.2)
            second = processes(tmp_path)[1]["pid"]
            assert second != first and served.proc.poll() is None
            assert b"delivery process exited; restarting it" in served.stderr.read_bytes()


def test_the_delivery_process_stops_when_the_api_process_is_killed(tmp_path: Path) -> None:
    with serving(tmp_path, "", "--demo") as served:
        child = processes(tmp_path)[1]["pid"]
        assert isinstance(child, int)
        served.proc.send_signal(signal.SIGKILL)
        served.proc.wait(10)
        deadline = time.monotonic() + 20
        while alive(child):
            assert time.monotonic() < deadline, "the delivery process outlived its parent"
            time.sleep(0.1)


def test_an_api_role_and_a_dispatcher_role_started_apart_form_one_gateway(tmp_path: Path) -> None:
    env = serve_env(tmp_path, DAKGHAR_LOG_LEVEL="info", DAKGHAR_LOG_FORMAT="json")
    (tmp_path / "dakghar.toml").write_text("")
    dispatcher = subprocess.Popen(
        [sys.executable, "-m", "dakghar.cli.main", "serve", "--config",
         str(tmp_path / "dakghar.toml"), "--role", "dispatcher"],
        env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        with serving(tmp_path, "", "--role", "api", "--demo") as served:
            key = (tmp_path / "dakghar-demo.key").read_text().strip()
            deadline = time.monotonic() + 30
            while not (gateway := status(tmp_path)["gateway"]) or isinstance(gateway, str):
                assert time.monotonic() < deadline, gateway
                time.sleep(0.2)
            assert [p["runs"] for p in processes(tmp_path)] == [["api"], ["dispatcher"]]
            (mid,) = post_batch(served, key, 0, 1)
            deadline = time.monotonic() + 15
            while delivered(tmp_path / "serve.db") < 1:
                assert time.monotonic() < deadline, f"{mid} was not delivered"
                time.sleep(0.1)
            served.proc.send_signal(signal.SIGHUP)  # `dakghar reload` signals the API's pid
            time.sleep(1.5)
            assert served.proc.poll() is None
        # The API stopping does not stop a dispatcher it did not start.
        assert dispatcher.poll() is None
    finally:
        dispatcher.terminate()
        _, err = dispatcher.communicate(timeout=20)
    assert dispatcher.returncode == 0
    assert b'"routes reloaded"' in err  # the API passed the reload on to the dispatcher


def test_a_second_dispatcher_on_the_same_store_waits_for_the_first(tmp_path: Path) -> None:
    from dakghar.pipeline.process import dispatcher_lock
    from dakghar.settings import load_settings

    settings = msgspec.structs.replace(
        load_settings(None), database_url=f"sqlite:///{tmp_path}/x.db", data_dir=str(tmp_path)
    )
    refused = pytest.raises(RuntimeError, match="another dispatcher holds")
    with dispatcher_lock(settings), refused, dispatcher_lock(settings, wait=0.3):
        pass
    with dispatcher_lock(settings, wait=0.3):  # released when the first one stopped
        pass
