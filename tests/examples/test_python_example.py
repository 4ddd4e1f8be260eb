"""``examples/python/send_and_verify.py`` runs against a live gateway and verifies a real
webhook (the SDK suite's ``serve --demo``, shared when both run in one session)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sdk.conftest import Live, shared_live

EXAMPLE = Path(__file__).parents[2] / "examples" / "python" / "send_and_verify.py"


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    return shared_live(tmp_path_factory, request)


def test_example_sends_follows_and_verifies_its_webhook(live: Live) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--base-url", live.url, "--timeout", "45"],
        cwd=live.data_dir, capture_output=True, text=True, timeout=60,  # key: ./dakghar-demo.key
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    sent = re.fullmatch(r"sent (msg_\w+) \(queued\)", lines[0])
    assert sent, lines
    assert "final delivered" in lines  # the same walkthrough as the other examples print
    assert lines[-2:] == [f"webhook {sent[1]} delivered: signature verified",
                          "tampered body: signature rejected"]  # fmt: skip


def test_example_reports_a_refused_send(live: Live) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--base-url", live.url, "--to", "12345"],
        cwd=live.data_dir, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout.startswith("not sent: invalid_number")
