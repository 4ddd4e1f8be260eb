"""A circuit breaker per connector: stop sending to a carrier that keeps failing, probe, recover.

Closed: requests flow; ``failure_threshold`` consecutive failures (timeouts count) open it.
Open: ``allow`` answers False for ``open_seconds``; the dispatcher sends the route's traffic to the
next connector (failover) meanwhile. Half open: ``half_open_probes`` requests go through; a
success closes the breaker, a failure opens it again for twice as long (capped). Pure: the caller
passes ``now`` (``time.monotonic()``), so tests drive it with a fake clock.
"""

from __future__ import annotations

from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker with exponential re-open time."""

    def __init__(
        self,
        failure_threshold: int = 5,
        open_seconds: float = 10.0,
        max_open_seconds: float = 120.0,
        half_open_probes: int = 1,
    ) -> None:
        if failure_threshold < 1 or half_open_probes < 1 or open_seconds <= 0:
            raise ValueError("threshold and probes must be >= 1 and open_seconds > 0")
        self.failure_threshold = failure_threshold
        self.base_open = open_seconds
        self.max_open = max(open_seconds, max_open_seconds)
        self.half_open_probes = half_open_probes
        self.state = CLOSED
        self.failures = 0
        self.trips = 0
        self.opened_at: float | None = None
        self.reopen_at: float | None = None
        self._open_for = open_seconds
        self._probes_left = 0

    def allow(self, now: float) -> bool:
        """May a request go to this connector now?"""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self.reopen_at is not None and now < self.reopen_at:
                return False
            self.state = HALF_OPEN
            self._probes_left = self.half_open_probes
        if self._probes_left > 0:
            self._probes_left -= 1
            return True
        return False

    def record_success(self, now: float) -> None:
        """A request succeeded: close (from half open) and forget past failures."""
        self.failures = 0
        if self.state != CLOSED:
            self.state = CLOSED
            self._open_for = self.base_open
            self.opened_at = self.reopen_at = None

    def record_failure(self, now: float) -> None:
        """A request failed (or timed out)."""
        self.failures += 1
        if self.state == HALF_OPEN:
            self._open_for = min(self.max_open, self._open_for * 2)
            self._trip(now)
        elif self.state == CLOSED and self.failures >= self.failure_threshold:
            self._trip(now)

    def _trip(self, now: float) -> None:
        self.state = OPEN
        self.trips += 1
        self.opened_at = now
        self.reopen_at = now + self._open_for
        self._probes_left = 0

    def snapshot(self) -> dict[str, Any]:
        """State for /v1/connectors, metrics and the CLI."""
        return {
            "state": self.state,
            "consecutive_failures": self.failures,
            "opened_at": self.opened_at,
            "reopen_at": self.reopen_at,
            "trips": self.trips,
        }
