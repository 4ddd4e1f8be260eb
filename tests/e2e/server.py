"""A real ``uvicorn`` server running the real app in a background thread, for e2e tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from dakghar.api.app import Component, create_app
from dakghar.core.keys import generate_key
from dakghar.settings import Settings
from dakghar.store.base import ApiKey, now_ms
from dakghar.store.sqlite import SqliteStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_tenant(settings: Settings, mode: str = "test", **account: object) -> str:
    """Create an account and key in the settings' database before the server starts."""

    async def go() -> str:
        store = SqliteStore(settings.database_url)
        await store.open()
        try:
            acc = await store.create_account(name="fuzz", balance_milli=10**9, **account)
            new = generate_key(settings.secret, mode)
            await store.create_api_key(
                ApiKey(new.key_id, acc.id, mode, new.key_hash, None, now_ms(), None)
            )
            return new.key
        finally:
            await store.close()

    return asyncio.run(go())


@contextmanager
def running_server(settings: Settings, components: list[Component] | None = None) -> Iterator[str]:
    """Serve the app on a free loopback port; yields its base URL."""
    port = free_port()
    app = create_app(settings, components=components)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def settings_in(tmp: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp}/e2e.db", data_dir=str(tmp), secret_key="e2e-" + "k" * 40
    )
