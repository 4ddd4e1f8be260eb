"""OTP fixtures: a settable clock wired into the app's OTP service (no sleeping in tests)."""

from __future__ import annotations

import time

import pytest

from dakghar.otp import OtpService
from tests.conftest import Gateway


class Clock:
    """Wall-clock seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(gateway: Gateway) -> Clock:
    """Give the gateway an OTP service that reads this clock."""
    c = Clock()
    svc = gateway.services
    svc.otp = OtpService(svc.store, svc.acceptor, gateway.settings.secret, clock=c)
    return c
