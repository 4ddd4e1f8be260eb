"""Kill switches and routes changed from outside the running gateway (the CLI, a reload).

The CLI is another process as far as the gateway is concerned: it writes the same database
through its own connection. Its changes must hold for the very next request, and routes that
start-up would refuse must be refused by the CLI and a reload alike.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dakghar.cli.main import cli
from dakghar.pipeline.routing import Router
from dakghar.pipeline.runtime import build_router
from dakghar.settings import SettingsError
from tests.conftest import Gateway
from tests.e2e.test_delivery import FINAL, delivering, gw, send, wait_status

__all__ = ["gw"]  # the fixture, imported for these tests


def _env(gw: Gateway) -> dict[str, str]:
    return {
        "DAKGHAR_DATA_DIR": gw.settings.data_dir,
        "DAKGHAR_DATABASE_URL": gw.settings.database_url,
        "DAKGHAR_SECRET_KEY": gw.settings.secret_key or "",
    }


def test_an_account_paused_by_the_cli_is_refused_on_the_next_request(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    send(gw, t.headers, to="+919812345678")  # the key and account are now cached in-process
    result = CliRunner().invoke(cli, ["accounts", "pause", t.account.id], env=_env(gw))
    assert result.exit_code == 0, result.output
    r = gw.client.post("/v1/messages", json={"to": "+919812345678", "body": "hi"},
                       headers=t.headers)  # fmt: skip
    assert r.status_code == 503 and r.json()["code"] == "sending_paused"
    assert "Retry-After" in r.headers
    result = CliRunner().invoke(cli, ["accounts", "resume", t.account.id], env=_env(gw))
    assert result.exit_code == 0
    r = gw.client.post("/v1/messages", json={"to": "+919812345678", "body": "hi"},
                       headers=t.headers)  # fmt: skip
    assert r.status_code == 202


def test_a_global_pause_by_the_cli_is_refused_on_the_next_request(gw: Gateway) -> None:
    t = gw.tenant(mode="test")
    send(gw, t.headers, to="+919812345678")
    assert CliRunner().invoke(cli, ["pause", "--global"], env=_env(gw)).exit_code == 0
    r = gw.client.post("/v1/messages", json={"to": "+919812345678", "body": "hi"},
                       headers=t.headers)  # fmt: skip
    assert r.status_code == 503 and r.json()["code"] == "sending_paused"
    assert CliRunner().invoke(cli, ["resume", "--global"], env=_env(gw)).exit_code == 0


def test_pausing_a_connector_that_does_not_exist_fails(gw: Gateway) -> None:
    result = CliRunner().invoke(cli, ["pause", "--connector", "nosuch"], env=_env(gw))
    assert result.exit_code != 0 and "no connector 'nosuch'" in result.output
    result = CliRunner().invoke(cli, ["pause", "--connector", "simulator"], env=_env(gw))
    assert result.exit_code == 0
    CliRunner().invoke(cli, ["resume", "--connector", "simulator"], env=_env(gw))


def test_with_the_only_connector_paused_messages_stay_queued_until_it_resumes(
    gw: Gateway,
) -> None:
    t = gw.tenant()  # sandbox: the simulator is its only connector
    assert (
        CliRunner().invoke(cli, ["pause", "--connector", "simulator"], env=_env(gw)).exit_code == 0
    )
    dispatcher = gw.services.delivery.dispatcher
    deadline = time.monotonic() + 5
    while not dispatcher.switches.connector_paused("simulator"):  # the next sweep reads it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    mid = send(gw, t.headers, to="+919812345678")["id"]
    time.sleep(2.0)  # several claim rounds
    m = gw.client.get(f"/v1/messages/{mid}", headers=t.headers).json()
    # Not claimed to wait in "sending", writing an event a second: nothing could send it.
    assert (m["status"], [e["status"] for e in m["events"]]) == ("queued", ["queued"])
    assert (
        CliRunner().invoke(cli, ["resume", "--connector", "simulator"], env=_env(gw)).exit_code == 0
    )
    done = wait_status(gw, t.headers, mid, FINAL)
    assert done["status"] == "delivered"
    assert not any("waiting" in (e["detail"] or "") for e in done["events"])


CONFIG = """[[connectors]]
name = "airtel"
type = "smpp"
host = "127.0.0.1"
port = 2775
system_id = "acme"
"""


@pytest.mark.parametrize("name", ["nosuch", "simulator"])
def test_routes_add_refuses_what_start_up_refuses(tmp_path: Path, name: str) -> None:
    config = tmp_path / "dakghar.toml"
    config.write_text(CONFIG)
    args = ["routes", "add", "--country", "IN", "--connector", "airtel", "--connector", name]
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code != 0 and name in result.output
    assert config.read_text() == CONFIG  # nothing written


def test_start_up_and_reload_refuse_a_route_to_the_simulator() -> None:
    with pytest.raises(SettingsError, match="simulated carrier"):
        build_router([{"country": "IN", "connectors": ["simulator"]}], ["airtel"])
    with pytest.raises(SettingsError, match="unknown connectors"):
        build_router([{"country": "IN", "connectors": ["jio"]}], ["airtel"])


def test_live_traffic_never_reaches_the_simulator_even_if_a_route_names_it(
    tmp_path: Path,
) -> None:
    with delivering(tmp_path) as gw:
        dispatcher = gw.services.delivery.dispatcher
        # as a reload before this fix could leave it: a route to the fake carrier
        dispatcher.router = Router.from_settings([{"country": "IN", "connectors": ["simulator"]}])
        live = gw.tenant(mode="live", balance_milli=10_000)
        m = send(gw, live.headers, to="+919812345678")
        sandbox = gw.tenant(mode="test")
        control = send(gw, sandbox.headers, to="+919812345678")
        wait_status(gw, sandbox.headers, control["id"], FINAL)
        time.sleep(0.5)
        got = gw.client.get(f"/v1/messages/{m['id']}", headers=live.headers).json()
        assert got["status"] in {"queued", "sending"} and got["connector"] is None
        assert got["submitted_at"] is None


def test_readyz_reflects_the_live_connectors_not_the_simulator(tmp_path: Path) -> None:
    from tests.e2e.test_delivery import dead_port, smpp_connector

    connectors = [smpp_connector("airtel", dead_port())]
    with delivering(tmp_path, connectors=connectors) as gw:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait until the simulator is bound
            if gw.services.delivery.dispatcher.connectors["simulator"].ready:
                break
            time.sleep(0.05)
        r = gw.client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["connectors"] == "down"


@pytest.mark.parametrize(("long_messages", "parts"), [("udh", 2), ("udh16", 3)])
def test_a_long_message_is_billed_as_the_parts_it_went_out_in(
    tmp_path: Path, long_messages: str, parts: int
) -> None:
    from tests.e2e.carrier import carrier
    from tests.e2e.test_delivery import smpp_connector

    with carrier() as smsc:
        table = {**smpp_connector("airtel", smsc.address[1]), "long_messages": long_messages}  # type: ignore[index]
        routes = [{"country": "IN", "connectors": ["airtel"]}]
        with delivering(tmp_path, connectors=[table], routes=routes) as gw:
            t = gw.tenant(mode="live", balance_milli=10_000)
            m = send(gw, t.headers, to="+919812345678", body="x" * 306)  # 2 x 153 septets
            assert m["segments"] == 2 and m["price"] == 2.0  # as counted at accept
            done = wait_status(gw, t.headers, m["id"], FINAL)
            assert done["status"] == "delivered"
            assert smsc.stats.submits == parts  # what the carrier got
            assert (done["segments"], done["price"]) == (parts, float(parts))
            balance = gw.client.get("/v1/account", headers=t.headers).json()["balance"]
            assert balance == 10.0 - parts


def test_the_in_process_simulator_refuses_its_own_system_id_with_another_password(
    tmp_path: Path,
) -> None:
    with delivering(tmp_path) as gw:
        sim = gw.services.delivery.simulator
        host, port = sim.address
        password = sim.config.password
        assert password and len(password) <= 8
        assert _raw_bind_status(host, port, "dakghar", "wrong") != 0
        assert _raw_bind_status(host, port, "dakghar", "") != 0
        assert _raw_bind_status(host, port, "dakghar", password) == 0


def _raw_bind_status(host: str, port: int, system_id: str, password: str) -> int:
    """command_status of a bind_transceiver sent as raw bytes (SMPP 3.4 4.1.5)."""
    import socket as s
    import struct

    cstrings = system_id.encode() + b"\0" + password.encode() + b"\0" + b"\0"  # + system_type
    body = cstrings + bytes([0x34, 0, 0]) + b"\0"  # version, ton, npi, address_range
    pdu = struct.pack(">IIII", 16 + len(body), 0x00000009, 0, 1) + body
    with s.create_connection((host, port), timeout=5) as conn:
        conn.sendall(pdu)
        head = b""
        while len(head) < 16:
            chunk = conn.recv(16 - len(head))
            assert chunk, "closed before answering the bind"
            head += chunk
        return int(struct.unpack(">IIII", head)[2])


def test_the_api_stays_up_while_the_smpp_port_is_flooded(tmp_path: Path) -> None:
    import socket

    with delivering(tmp_path) as gw:
        host, port = gw.services.delivery.simulator.address
        t = gw.tenant(mode="test")
        flood: list[socket.socket] = []
        try:
            for _ in range(700):  # past the simulator's caps (50 per address, 500 in all)
                try:
                    flood.append(socket.create_connection((host, port), timeout=2))
                except OSError:
                    break
            assert gw.client.get("/healthz").status_code == 200
            m = send(gw, t.headers, to="+919812345678")
            assert wait_status(gw, t.headers, m["id"], FINAL)["status"] == "delivered"
            time.sleep(0.3)
            refused = gw.services.delivery.simulator.stats.connections_refused
            assert refused >= len(flood) - 50  # the excess was closed, not kept open
        finally:
            for s in flood:
                s.close()
