"""Fixtures shared by the whole suite: a real app on a real SQLite file, with accounts and keys."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

from starlette.testclient import TestClient  # noqa: E402

from dakghar.api.app import create_app  # noqa: E402
from dakghar.core.keys import generate_key  # noqa: E402
from dakghar.settings import ApiSettings, Settings  # noqa: E402
from dakghar.store.base import Account, ApiKey, now_ms  # noqa: E402
from tests import pg  # noqa: E402


@dataclass
class Tenant:
    """An account with one key, and the headers to call as it."""

    account: Account
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Gateway:
    """A running app (TestClient) plus helpers to create tenants through the real store."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.services = client.app.state.services  # type: ignore[attr-defined]

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an async store call on the app's loop."""
        return self.client.portal.call(lambda: fn(*args, **kwargs))

    def tenant(self, *, mode: str = "test", **account: Any) -> Tenant:
        account.setdefault("name", "acme")
        account.setdefault("balance_milli", 100_000)
        account.setdefault("default_sender", "DKGHAR")
        acc = self.call(self.services.store.create_account, **account)
        new = generate_key(self.settings.secret, mode)
        self.call(
            self.services.store.create_api_key,
            ApiKey(new.key_id, acc.id, mode, new.key_hash, None, now_ms(), None),
        )
        return Tenant(acc, new.key)


# DAKGHAR_TEST_STORE=postgresql runs the app-level tests on a fresh PostgreSQL database each
# (the parity check of the two backends beyond the store contract suite).
TEST_STORE = os.environ.get("DAKGHAR_TEST_STORE", "sqlite")


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    pg.drop_created()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings on a fresh SQLite file in ``tmp_path`` (or PostgreSQL database, above)."""
    url = pg.create() if TEST_STORE == "postgresql" else f"sqlite:///{tmp_path}/dakghar.db"
    return Settings(
        database_url=url,
        data_dir=str(tmp_path),
        secret_key="test-secret-" + "x" * 32,
        **overrides,
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = make_settings(tmp_path, api=ApiSettings(max_body_bytes=256 * 1024))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Gateway(client, settings)
