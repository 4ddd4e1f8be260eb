"""The dashboard page, rendered by a real headless Chromium during a sandbox run.

The gateway runs for real (uvicorn, dispatcher, simulated carrier); messages are delivered;
Chromium loads /dashboard with an admin key, runs its JavaScript and dumps the DOM, and the
numbers it shows must be the ones /v1/dashboard and /v1/stats answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from dakghar.core.keys import generate_key
from dakghar.pipeline.runtime import delivery_component
from dakghar.store.base import ApiKey, now_ms
from dakghar.store.sqlite import SqliteStore
from tests.conftest import make_settings
from tests.e2e.server import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (.ci/install-peers installs it)",
    ),
    pytest.mark.timeout(120),
]
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def call(url: str, key: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def admin_key(settings: Any) -> str:
    async def go() -> str:
        store = SqliteStore(settings.database_url)
        await store.open()
        try:
            acc = await store.create_account(name="ops", balance_milli=0, default_sender="DKGHAR")
            new = generate_key(settings.secret, "test")
            await store.create_api_key(
                ApiKey(new.key_id, acc.id, "test", new.key_hash, None, now_ms(), None, "admin")
            )
            return new.key
        finally:
            await store.close()

    return asyncio.run(go())


def test_the_dashboard_shows_what_the_api_says(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, simulator={"receipt_delay_ms": [1, 10]})
    key = admin_key(settings)
    with running_server(settings, [delivery_component(settings)]) as url:
        ids = [
            call(f"{url}/v1/messages", key, {"to": to, "body": "Dashboard check"})["id"]
            for to in ["+919812345670", "+919812345671", "+919812345672", "+917000000002"]
        ]
        deadline = time.monotonic() + 15
        while any(
            call(f"{url}/v1/messages/{i}", key)["status"] not in ("delivered", "undelivered")
            for i in ids
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        api = call(f"{url}/v1/dashboard", key)
        profile = tmp_path / "chromium-profile"
        dom = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=6000",
             "--dump-dom", f"{url}/dashboard#key={key}"],
            capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
    assert 'id="main">' in dom or 'id="main" ' in dom, dom[:500]
    shown = int(re.search(r'id="total-delivered">(\d+)<', dom).group(1))  # type: ignore[union-attr]
    assert shown == api["counters"]["delivered"] == 3
    rates = dict(re.findall(r'data-key="([^"]+)">([^<]+)<', dom))
    assert rates["Vi"] == "100.0% of 3"
    assert rates["Jio"] == "0.0% of 1"
    assert 'id="queue-promotional">0<' in dom
    assert "simulator" in dom and ">up<" in dom
