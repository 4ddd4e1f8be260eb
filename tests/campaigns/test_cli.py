"""``dakghar campaigns create|status`` through click, on a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dakghar.cli.admin import accounts
from dakghar.cli.campaigns import campaigns


@click.group()
def cli() -> None:
    """The commands as cli/main.py registers them."""


cli.add_command(accounts)
cli.add_command(campaigns)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[str, str]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAKGHAR_DATABASE_URL", f"sqlite:///{tmp_path}/dakghar.db")
    monkeypatch.setenv("DAKGHAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAKGHAR_SECRET_KEY", "cli-secret-" + "y" * 32)
    monkeypatch.setenv("DAKGHAR_LOG_LEVEL", "warning")
    runner = CliRunner()

    def go(*args: str) -> tuple[str, str]:
        result = runner.invoke(cli, list(args), obj={}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout, result.stderr

    return go


def test_create_then_status(run: Callable[..., tuple[str, str]], tmp_path: Path) -> None:
    run("accounts", "create", "demo", "--sender", "DKGHAR")
    src = tmp_path / "list.csv"
    src.write_text("phone,name\n9812345678,Asha\n9812345679,Ravi\nbad,X\n")
    out, err = run("campaigns", "create", str(src), "--body", "Hi {name}", "--no-follow")
    cid = out.strip()
    assert cid.startswith("cmp_") and "3 rows, 2 valid, 1 invalid" in err
    status = json.loads(run("campaigns", "status", cid)[0])
    assert (status["id"], status["queued"], status["status"]) == (cid, 2, "running")


def test_following_ends_when_nothing_is_left(
    run: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    run("accounts", "create", "demo", "--sender", "DKGHAR")
    src = tmp_path / "bad.csv"
    src.write_text("phone\nbad\n+917000000004\n")
    out, err = run("campaigns", "create", str(src), "--body", "Sale", "--type", "promotional")
    assert out.strip().startswith("cmp_")
    assert "completed" in err and "1 DND-filtered" in err
