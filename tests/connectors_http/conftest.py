"""Credentials for the fake providers come from the environment, as in production."""

from __future__ import annotations

import pytest

from tests.connectors_http.fakes import SECRET


@pytest.fixture(autouse=True)
def provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TOKEN", SECRET)
    monkeypatch.setenv("FAKE_SIG", "vonage-signature-secret")
    monkeypatch.setenv("FAKE_CB", "callback-shared-secret")
