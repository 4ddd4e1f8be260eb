"""The CLI and ``make run`` share one database and data directory, with no variables to set.

Before, ``make run`` exported ``DAKGHAR_DATA_DIR=data`` and a database under it while the CLI
defaulted to ``./dakghar.db``, so the admin-key command the banner prints failed in a second
terminal with "no account", and quietly created a second database and secret.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.e2e.server import free_port

ROOT = Path(__file__).resolve().parents[2]


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DAKGHAR_")}


def test_make_run_exports_no_database_or_data_directory() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"^\s*export\s+DAKGHAR_", makefile, re.M)
    assert "dakghar serve --demo" in makefile


def test_the_banners_admin_key_command_works_from_the_same_folder(tmp_path: Path) -> None:
    port = free_port()
    env = _plain_env()
    out = tmp_path / "out.txt"
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dakghar", "serve", "--demo", "--no-delivery",
             "--port", str(port)],
            cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "Demo key" not in out.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
            time.sleep(0.1)
        banner = out.read_text()
        command = re.search(r"dakghar (keys create acc_\S+ --sandbox --admin)", banner)
        assert command is not None, banner
        made = subprocess.run(
            [sys.executable, "-m", "dakghar", *command.group(1).split()],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        admin = made.stdout.strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/dashboard", headers={"Authorization": f"Bearer {admin}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200  # the key the CLI made works against the running gateway
    finally:
        proc.terminate()
        proc.wait(15)
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["dakghar.db"]  # one database
