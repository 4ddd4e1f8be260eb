"""One real ``dakghar serve --demo`` for the whole SDK suite (started once: about 4 s).

``--demo`` creates the sandbox demo account and key (``dakghar-demo.key`` in the data
directory) and allows loopback callback URLs, so the suite's webhook receiver can be reached.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import dakghar_client as dk
from tests.e2e.serve_process import Served, get, serve_env, serving


@dataclass
class Live:
    """The running gateway, its demo key and its data directory."""

    served: Served
    key: str
    data_dir: Path

    @property
    def url(self) -> str:
        return self.served.url

    def client(self, base_url: str | None = None, **options: Any) -> dk.Client:
        return dk.Client(self.key, base_url=base_url or self.url, **options)

    def async_client(self, base_url: str | None = None, **options: Any) -> dk.AsyncClient:
        return dk.AsyncClient(self.key, base_url=base_url or self.url, **options)

    def cli(self, *args: str) -> str:
        """Run a ``dakghar`` admin command on the gateway's database; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "dakghar.cli.main", *args],
            env=serve_env(self.data_dir), capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("sdk-gateway")
    with serving(tmp, "", "--demo") as served:
        key_file = tmp / "dakghar-demo.key"
        deadline = time.monotonic() + 30
        # /readyz: the store, the queue and the simulated carrier's connector are all up
        while not key_file.exists() or get(f"{served.url}/readyz")[0] != 200:
            assert time.monotonic() < deadline, "gateway not ready"
            time.sleep(0.1)
        yield Live(served, key_file.read_text().strip(), tmp)


@pytest.fixture
def client(live: Live) -> Iterator[dk.Client]:
    with live.client() as c:
        yield c


def wait_final(client: dk.Client, message_id: str, timeout: float = 15) -> dk.Message:
    """Poll a message until its status is final."""
    deadline = time.monotonic() + timeout
    while True:
        message = client.messages.get(message_id)
        if message.is_final or time.monotonic() > deadline:
            return message
        time.sleep(0.1)
