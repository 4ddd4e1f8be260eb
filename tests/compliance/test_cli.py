"""``dakghar senders|templates|dnd|accounts dlt`` through click, on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dakghar.cli.admin import accounts
from dakghar.cli.compliance import dnd_group, senders, templates


@click.group()
def cli() -> None:
    """The commands as cli/main.py registers them."""


for command in (accounts, senders, templates, dnd_group):
    cli.add_command(command)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAKGHAR_DATABASE_URL", f"sqlite:///{tmp_path}/db/dakghar.db")
    monkeypatch.setenv("DAKGHAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAKGHAR_SECRET_KEY", "cli-secret-" + "y" * 32)
    runner = CliRunner()

    def go(*args: str) -> str:
        result = runner.invoke(cli, list(args), obj={}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return go


def test_register_senders_and_templates_and_turn_dlt_on(run: object, tmp_path: Path) -> None:
    go = run  # type: ignore[assignment]
    go("accounts", "create", "acme")
    assert "DLT enforcement on" in go("accounts", "dlt", "acme", "--on")
    go("senders", "add", "acmebk", "--account", "acme", "--type", "service", "--entity-id", "120")
    assert json.loads(go("senders", "list", "--account", "acme")) == {
        "header": "ACMEBK",
        "type": "service",
        "entity_id": "120",
    }
    go("templates", "add", "T1", "--account", "acme", "--header", "ACMEBK", "--text", "Hi {#var#}")
    csv_file = tmp_path / "templates.csv"
    csv_file.write_text(
        'template_id,header,category,text\nT2,acmebk,service,"Bye {#var#}, see you"\n'
    )
    assert "1 templates imported" in go("templates", "import", str(csv_file), "--account", "acme")
    listed = [
        json.loads(line) for line in go("templates", "list", "--account", "acme").splitlines()
    ]
    assert [(t["id"], t["header"]) for t in listed] == [("T1", "ACMEBK"), ("T2", "ACMEBK")]


def test_dnd_import_writes_the_file_beside_the_database(run: object, tmp_path: Path) -> None:
    go = run  # type: ignore[assignment]
    src = tmp_path / "ncpr.csv"
    src.write_text("phone,preferences\n9812345678,0\n9812345679,13\n")
    out = go("dnd", "import", str(src))
    assert "2 numbers imported" in out
    assert (tmp_path / "db" / "dnd.bin").stat().st_size == 16 + 2 * 8


def test_templates_import_refuses_a_text_cut_at_an_unquoted_comma(tmp_path: Path) -> None:
    env = {
        "DAKGHAR_DATA_DIR": str(tmp_path),
        "DAKGHAR_DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
        "DAKGHAR_SECRET_KEY": "cli-secret-" + "y" * 32,
    }
    runner = CliRunner()
    assert runner.invoke(cli, ["accounts", "create", "acme"], env=env).exit_code == 0
    bad = tmp_path / "templates.csv"
    bad.write_text("template_id,header,category,text\nT2,acmebk,service,Bye {#var#}, see you\n")
    result = runner.invoke(cli, ["templates", "import", str(bad), "--account", "acme"], env=env)
    assert result.exit_code != 0, result.output
    assert "line 2: 5 fields where the header has 4" in result.output
    listed = runner.invoke(cli, ["templates", "list", "--account", "acme"], env=env)
    assert listed.output.strip() == ""  # nothing half-imported
