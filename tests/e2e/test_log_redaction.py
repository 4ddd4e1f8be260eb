"""No message body, OTP code or full phone number ever reaches the logs (the guide's rule).

Runs a real `dakghar serve` at debug level, drives it through the paths that log the most
(sends that deliver, fail and retry, a long unicode message, OTP send/check with wrong and right
codes, a bad request echoing its input, a webhook to a receiver that fails), then reads every
line the process wrote to stdout and stderr.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import free_port

pytestmark = pytest.mark.timeout(120)
MARKER = "zq7MARKERx9 secret body"
NUMBERS = ["+919812345678", "+917000000001", "+917000000003", "+919876501234"]


def call(port: int, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_logs_of_a_busy_sandbox_run_hold_no_content_codes_or_numbers(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DAKGHAR_DATA_DIR": str(tmp_path),
        "DAKGHAR_DATABASE_URL": f"sqlite:///{tmp_path}/d.db",
        "DAKGHAR_LOG_LEVEL": "debug",
        "DAKGHAR_LOG_FORMAT": "json",
    }
    # The failing webhook receiver is on loopback, which callbacks reach only with private
    # networks allowed (as `serve --demo` will allow them).
    (tmp_path / "dakghar.toml").write_text(
        "[simulator]\nreceipt_delay_ms = [1, 10]\n[webhooks]\nallow_private_networks = true\n"
    )
    port = free_port()
    log = tmp_path / "serve.log"  # stderr: the log; stdout holds only the demo banner
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dakghar.cli.main", "--config", str(tmp_path / "dakghar.toml"),
             "serve", "--demo", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not (tmp_path / "dakghar-demo.key").exists() or not _open(port):
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                time.sleep(0.1)
            key = (tmp_path / "dakghar-demo.key").read_text().strip()
            ids = []
            for to in NUMBERS:
                hook = f"http://127.0.0.1:{free_port()}/x"  # nobody listens: webhook errors log
                status, m = call(
                    port,
                    key,
                    "POST",
                    "/v1/messages",
                    {"to": to, "body": MARKER, "callback_url": hook},
                )
                assert status == 202, m
                ids.append(m["id"])
            status, m = call(port, key, "POST", "/v1/messages",
                             {"to": NUMBERS[0], "body": "नमस्ते " + MARKER * 5})  # fmt: skip
            assert status == 202
            status, _ = call(port, key, "POST", "/v1/messages", {"to": MARKER, "body": MARKER})
            assert status == 422
            status, otp = call(port, key, "POST", "/v1/otp", {"to": NUMBERS[3]})
            assert status == 201, otp
            time.sleep(1.0)
            status, msg = call(port, key, "GET", f"/v1/messages/{otp['message_id']}")
            code = re.search(r"\d{6}", msg["body"])
            assert code is not None
            call(port, key, "POST", "/v1/otp/check", {"id": otp["id"], "code": "000000"})
            right = {"id": otp["id"], "code": code.group()}
            status, ok = call(port, key, "POST", "/v1/otp/check", right)
            assert ok["status"] == "approved"
            deadline = time.monotonic() + 20
            while call(port, key, "GET", f"/v1/messages/{ids[2]}")[1]["status"] != "delivered":
                assert time.monotonic() < deadline  # the throttled-twice number has retried
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(20)
    text = log.read_text()
    events = {json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")}
    assert {"smpp bound", "otp sent", "otp checked"} <= events, events  # the log really ran
    assert MARKER not in text and "zq7MARKER" not in text
    assert code.group() not in text
    for number in NUMBERS:
        assert number not in text and number[1:] not in text, number


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False
