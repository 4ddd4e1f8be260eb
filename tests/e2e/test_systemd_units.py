"""deploy/systemd and docs/deploy.md: the units parse, and what they and the doc name is real.

Each unit's ``ExecStart`` is parsed by the real ``dakghar serve`` command line (an unknown option
or role fails here, not at a 3 a.m. restart), and its ``Environment=`` lines with the shipped
``dakghar.toml`` load into settings whose data lives in the unit's ``StateDirectory``.
``systemd-analyze verify`` checks every key; the test skips that part where the binary is absent.
The deployment doc's files exist and its TOML examples load as the settings they claim to be.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import trustme

from dakghar.cli.serve import serve
from dakghar.connectors.smpp import SmppConnectorConfig
from dakghar.settings import Settings, load_settings

pytestmark = pytest.mark.timeout(60)

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
ROLES = {"dakghar.service": "all", "dakghar-api.service": "api",
         "dakghar-dispatcher.service": "dispatcher"}  # fmt: skip
INSTALLED = "/opt/dakghar/bin/dakghar"  # where docs/deploy.md installs the command


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as sections of keys, each with every value it is given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize("name", sorted(ROLES))
def test_each_unit_runs_its_role_as_a_dedicated_user_with_hardening(name: str) -> None:
    service = unit(name)["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["User"] == one["Group"] == "dakghar"
    assert one["Restart"] == "on-failure"
    assert one["StateDirectory"] == "dakghar"
    assert one["EnvironmentFile"] == "-/etc/dakghar/dakghar.env"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes",
                       "CapabilityBoundingSet": ""}.items():  # fmt: skip
        assert one[key] == value, key
    assert "PrivateNetwork" not in one  # the API's wake-up hints use abstract Unix sockets

    command = shlex.split(one["ExecStart"])
    assert command[:2] == [INSTALLED, "serve"]
    # The real command line parses it: options and role exist as written.
    ctx = serve.make_context("serve", command[2:])
    assert ctx.params["role"] == ROLES[name]
    assert ctx.params["config"] == "/etc/dakghar/dakghar.toml"

    # Its environment and the shipped dakghar.toml: the data lives in the StateDirectory.
    env = dict(value.split("=", 1) for value in service["Environment"])
    settings = load_settings(UNITS / "dakghar.toml", env=env)
    state = f"/var/lib/{one['StateDirectory']}"
    assert settings.data_dir == state == one["WorkingDirectory"]
    assert settings.database_url == f"sqlite:///{state}/dakghar.db"
    assert settings.host == "127.0.0.1" and settings.port == 8080


def test_the_split_units_conflict_with_the_whole_gateway_unit() -> None:
    assert unit("dakghar.service")["Unit"]["Conflicts"] == [
        "dakghar-api.service dakghar-dispatcher.service"
    ]
    for name in ("dakghar-api.service", "dakghar-dispatcher.service"):
        assert unit(name)["Unit"]["Conflicts"] == ["dakghar.service"]
    assert unit("dakghar-api.service")["Unit"]["Wants"][-1] == "dakghar-dispatcher.service"


def verify(folder: Path, *names: str) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run([analyze, "verify", *(str(folder / n) for n in names)],
                          capture_output=True, text=True, timeout=30)  # fmt: skip


def test_systemd_analyze_verify_finds_nothing_to_say_about_the_units(tmp_path: Path) -> None:
    dakghar = Path(sys.executable).with_name("dakghar")
    if not dakghar.is_file():
        pytest.skip(f"{dakghar} is not installed (pip install -e .)")
    # verify checks that ExecStart's program exists: point it at this checkout's.
    for name in ROLES:
        (tmp_path / name).write_text((UNITS / name).read_text().replace(INSTALLED, str(dakghar)))
    done = verify(tmp_path, *ROLES)
    assert done.returncode == 0, done.stderr
    ours = [line for line in done.stderr.splitlines() if str(tmp_path) in line]
    assert ours == [], done.stderr

    # The check does catch a mistake: a misspelt key in a copy of the unit.
    broken = (tmp_path / "dakghar.service").read_text().replace("ProtectHome", "ProtectHoem")
    (tmp_path / "broken.service").write_text(broken)
    assert "ProtectHoem" in verify(tmp_path, "broken.service").stderr


DEPLOY_DOC = UNITS.parents[1] / "docs" / "deploy.md"


def test_deploy_doc_names_files_that_exist_and_settings_that_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DEPLOY_DOC.read_text()
    named = {m.rstrip(".,)") for m in re.findall(r"deploy/[\w./-]+", text)}
    assert named, "docs/deploy.md names no deploy/ file"
    for path in named:
        assert (UNITS.parents[1] / path).is_file(), path
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    # The built-in TLS block is a valid settings file.
    settings = load_settings(env={}, **tomllib.loads(blocks[0]))
    assert isinstance(settings, Settings) and settings.server.tls_cert is not None
    # The connector block validates, with its CA path pointed at a real bundle.
    ca_file = tmp_path / "airtel-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("AIRTEL_SMPP_PASSWORD", "s3cret")
    table = tomllib.loads(blocks[1].replace("/etc/dakghar/airtel-ca.pem", str(ca_file)))
    config = SmppConnectorConfig.from_settings(table["connectors"][0])
    assert config.tls and config.tls_verify and config.tls_context() is not None
