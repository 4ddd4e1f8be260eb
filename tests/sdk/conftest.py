"""One real ``dakghar serve --demo`` for the whole SDK suite (started once: about 4 s).

``--demo`` creates the sandbox demo account and key (``dakghar-demo.key`` in the data
directory) and allows loopback callback URLs, so the suite's webhook receiver can be reached.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dakghar_client as dk
import pytest
from click.testing import CliRunner

from dakghar.cli.main import cli
from tests.e2e.serve_process import Served, serve_env, serving


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
        """Run a ``dakghar`` admin command on the gateway's database; its output.

        In this process (the real command, through click's runner): a fresh interpreter
        would spend seconds importing the gateway on a loaded machine.
        """
        env = {k: None for k in os.environ if k.startswith("DAKGHAR_")}
        env.update(serve_env(self.data_dir))
        done = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done.stdout


_running: list[Live] = []


def shared_live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    """The session's one gateway, started on first use: ``tests/sdk`` and ``tests/examples``
    each declare a session fixture calling this, and both get the same gateway."""
    if not _running:
        stack = ExitStack()
        request.addfinalizer(stack.close)
        tmp = tmp_path_factory.mktemp("sdk-gateway")
        served = stack.enter_context(serving(tmp, "", "--demo"))
        key_file = tmp / "dakghar-demo.key"
        deadline = time.monotonic() + 30
        # Not /readyz: messages queue until the simulated carrier is bound (seconds on a busy
        # machine), and the tests that need a delivery wait for it in ``wait_final``.
        while not key_file.exists():
            assert time.monotonic() < deadline, "no demo key"
            time.sleep(0.05)
        _running.append(Live(served, key_file.read_text().strip(), tmp))
    return _running[0]


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    return shared_live(tmp_path_factory, request)


@pytest.fixture
def client(live: Live) -> Iterator[dk.Client]:
    with live.client() as c:
        yield c


def wait_final(client: dk.Client, message_id: str, timeout: float = 30) -> dk.Message:
    """Poll a message until its status is final."""
    deadline = time.monotonic() + timeout
    while True:
        message = client.messages.get(message_id)
        if message.is_final or time.monotonic() > deadline:
            return message
        time.sleep(0.1)
