"""``dakghar otp send`` / ``check`` on a real store, as a user trying OTP from the shell."""

from __future__ import annotations

import re
from pathlib import Path

import structlog
from click.testing import CliRunner

from dakghar.cli.admin import accounts
from dakghar.cli.otp import otp


def test_send_then_check_from_the_shell(tmp_path: Path) -> None:
    try:
        _send_then_check(tmp_path)
    finally:
        structlog.reset_defaults()  # the commands pointed logging at the runner's stderr


def _send_then_check(tmp_path: Path) -> None:
    env = {
        "DAKGHAR_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "DAKGHAR_DATA_DIR": str(tmp_path),
        "DAKGHAR_CONFIG": str(tmp_path / "none.toml"),
    }
    runner = CliRunner()
    made = runner.invoke(accounts, ["create", "shop", "--sender", "SHOPIN"], obj={}, env=env)
    assert made.exit_code == 0, made.output

    sent = runner.invoke(otp, ["send", "09812345678", "--account", "shop"], obj={}, env=env)
    assert sent.exit_code == 0, sent.output
    otp_id = sent.stdout.strip()
    assert otp_id.startswith("otp_")
    found = re.search(r"sandbox message: Your verification code is (\d{6})\.", sent.stderr)
    assert found, sent.stderr
    code = found[1]

    bad = "".join(str((int(d) + 1) % 10) for d in code)
    wrong = runner.invoke(
        otp, ["check", "+919812345678", bad, "--account", "shop"], obj={}, env=env
    )
    assert wrong.exit_code == 1
    assert wrong.stdout.startswith("pending\tattempts_left=4")

    right = runner.invoke(otp, ["check", "9812345678", code, "--account", "shop"], obj={}, env=env)
    assert right.exit_code == 0, right.output
    assert right.stdout == f"approved\tattempts_left=4\t{otp_id}\n"

    reused = runner.invoke(otp, ["check", "9812345678", code, "--account", "shop"], obj={}, env=env)
    assert reused.exit_code == 1
    assert "conflict" in reused.output and code not in reused.output

    nobody = runner.invoke(otp, ["send", "+919812345678", "--account", "nope"], obj={}, env=env)
    assert nobody.exit_code == 1 and "no account" in nobody.output
