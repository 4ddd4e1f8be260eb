"""``/docs`` rendered by a real headless Chromium against a real ``dakghar serve --demo``.

Chromium is driven over the DevTools protocol (aiohttp's WebSocket client), which lets the test
see every request the page makes, not only the final DOM: the reference must list every published
operation and schema, show example problems, run a "Try it" call with the demo key against the
same gateway, and never ask any other host for anything (users run it offline). Outside hosts are
also mapped to nowhere, so a regression cannot reach the network from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.e2e.serve_process import get, serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium (/usr/bin/chromium) is not installed; .ci/install-peers does",
    ),
    pytest.mark.timeout(120),
]
FLAGS = [
    "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0", "--window-size=1280,2000",
]  # fmt: skip
OPERATIONS_JS = """Array.from(document.querySelectorAll('.opblock')).map(b =>
  b.querySelector('.opblock-summary-method').textContent + ' ' +
  b.querySelector('.opblock-summary-path').getAttribute('data-path'))"""


class DevTools:
    """The few DevTools protocol calls the test needs, on one page target."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = json.loads((await self.ws.receive(timeout=30)).data)
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    async def js(self, expression: str) -> Any:
        # JSON-able values only: a DOM node cannot be returned by value.
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate ``expression`` until it is truthy (the page renders asynchronously)."""
        deadline = time.monotonic() + timeout
        while not (value := await self.js(expression)):
            assert time.monotonic() < deadline, f"never true: {expression}"
            await asyncio.sleep(0.2)
        return value

    def requested(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]


@contextlib.asynccontextmanager
async def browser(profile: Path) -> AsyncIterator[DevTools]:
    """A headless Chromium with a fresh profile, and DevTools on its one blank page."""
    assert CHROMIUM is not None
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []  # root cannot use the sandbox
    command = [CHROMIUM, *FLAGS, *sandbox, f"--user-data-dir={profile}", "about:blank"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert proc.poll() is None and time.monotonic() < deadline, "chromium did not start"
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                targets = await r.json()
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                devtools = DevTools(ws)
                await devtools.call("Network.enable")
                await devtools.call("Page.enable")
                yield devtools
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# Swagger UI's element id for POST /v1/messages: its tag and operationId.
SEND = "#operations-Messages-sendMessage"
LIVE = ".live-responses-table .response"  # the answer to an executed call


def inside_send(selector: str, then: str = "") -> str:
    """JavaScript for an element of the POST /v1/messages operation (and what to take of it)."""
    return f"document.querySelector('{SEND} {selector}'){then}"


async def read_the_reference(url: str, key: str, profile: Path) -> dict[str, Any]:
    async with browser(profile) as page:
        # The fragment is a deep link: Swagger UI opens that operation.
        await page.call("Page.navigate", url=f"{url}/docs#/Messages/sendMessage")
        rendered = await page.until(
            f"document.querySelectorAll('.opblock').length > 30 && {OPERATIONS_JS}"
        )
        await page.until("!!" + inside_send(".responses-table"))
        expanded = await page.js(f"document.querySelector('{SEND}').innerText")
        examples = await page.js(
            f"Array.from(document.querySelectorAll('{SEND} option')).map(o => o.textContent)"
        )
        schemas = await page.until(
            "Array.from(document.querySelectorAll('section.models "
            'article[data-json-schema-level="0"] .json-schema-2020-12__title\'))'
            ".map(t => t.textContent).join(',')"
        )
        # Try it: the demo key through Swagger UI's own authorisation, then Execute.
        await page.js(f"window.ui.preauthorizeApiKey('bearer', {json.dumps(key)})")
        await page.js(inside_send(".try-out__btn", ".click()"))
        await page.until("!!" + inside_send(".execute"))
        await page.js(inside_send(".execute", ".click()"))
        status = await page.until(
            f"({inside_send(LIVE + ' .response-col_status')} || {{}}).textContent"
        )
        answer = await page.js(inside_send(LIVE + " .response-col_description", ".innerText"))
        return {
            "operations": rendered,
            "expanded": expanded,
            "examples": examples,
            "schemas": schemas.split(","),
            "status": status.strip(),
            "answer": answer,
            "html": await page.js("document.documentElement.outerHTML"),
            "requested": page.requested(),
        }


def test_the_reference_renders_every_operation_and_tries_a_call_offline(tmp_path: Path) -> None:
    with serving(tmp_path, "", "--demo") as served:
        key = (tmp_path / "dakghar-demo.key").read_text().strip()
        status, body, _ = get(f"{served.url}/openapi.json")
        assert status == 200
        doc = json.loads(body)
        seen = asyncio.run(read_the_reference(served.url, key, tmp_path / "chromium"))

    published = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert "POST /v1/messages" in seen["operations"]
    assert set(seen["operations"]) == published
    assert {"MessageRequest", "Message", "Problem", "AccountView"} <= set(seen["schemas"])
    # The expanded operation shows its request example and its error answers with examples.
    assert "Your order 123 has shipped" in seen["expanded"]
    assert "422" in seen["expanded"] and "invalid_number" in " ".join(seen["examples"])
    # Try it: a real 202 from the same gateway, for the demo key.
    assert seen["status"] == "202", seen["answer"]
    assert '"status": "queued"' in seen["answer"]
    # Nothing but the gateway: every request the page made went to it.
    fetched = [u for u in seen["requested"] if not u.startswith("data:")]
    origins = {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in fetched}
    assert origins == {served.url}, fetched
    assert f"{served.url}/docs/assets/swagger-ui-bundle.js" in seen["requested"]
    assert f"{served.url}/v1/messages" in seen["requested"]
    for host in ("unpkg.com", "jsdelivr.net", "cdnjs.", "googleapis.com", "gstatic.com"):
        assert host not in seen["html"]
