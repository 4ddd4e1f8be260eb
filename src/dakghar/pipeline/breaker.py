"""A circuit breaker per connector: stop sending to a carrier that keeps failing, probe, recover.

Closed: requests flow; ``failure_threshold`` consecutive failures (timeouts count) open it.
"Consecutive" is in the order the requests were sent, not answered: a failure counts only if no
request sent at or after it has succeeded since. A timeout lands ``request_timeout`` after its
send, so after a burst the few requests a carrier left unanswered all land together, with the
burst's successes already in; answer order would read them as a streak and open the breaker on
a carrier that answered 97% of the burst (tests/e2e/test_reliability.py).
Open: ``allow`` answers False for ``open_seconds``; the dispatcher sends the route's traffic to the
next connector (failover) meanwhile. Half open: ``half_open_probes`` requests go through; a
success closes the breaker, a failure opens it again for twice as long (capped). A probe whose
verdict never comes (the carrier refused the message for good or throttled it, which says
nothing about its health) does not hold the breaker half open: after ``open_seconds`` without
one, the next request is a probe too. Pure: the caller passes ``now`` (``time.monotonic()``), so
tests drive it with a fake clock.
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
        self._probed_at = 0.0  # when the last probe went through
        self._success_sent = float("-inf")  # when the newest request that succeeded was sent

    def allow(self, now: float) -> bool:
        """May a request go to this connector now?"""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self.reopen_at is not None and now < self.reopen_at:
                return False
            self.state = HALF_OPEN
            self._probes_left = self.half_open_probes
        elif self._probes_left == 0 and now >= self._probed_at + self.base_open:
            self._probes_left = self.half_open_probes  # the probes went unanswered
        if self._probes_left > 0:
            self._probes_left -= 1
            self._probed_at = now
            return True
        return False

    def blocked_until(self, now: float) -> float | None:
        """When an open breaker lets a probe through (``reopen_at``), or None if it would let a
        request through now. Unlike :meth:`allow`, it changes nothing."""
        if self.state == OPEN and self.reopen_at is not None and now < self.reopen_at:
            return self.reopen_at
        return None

    def record_success(self, now: float, sent_at: float | None = None) -> None:
        """A request (sent at ``sent_at``, default ``now``) succeeded: close (from half open)
        and forget past failures."""
        self._success_sent = max(self._success_sent, now if sent_at is None else sent_at)
        self.failures = 0
        if self.state != CLOSED:
            self.state = CLOSED
            self._open_for = self.base_open
            self.opened_at = self.reopen_at = None

    def record_failure(self, now: float, sent_at: float | None = None) -> None:
        """A request (sent at ``sent_at``, default ``now``) failed or timed out. Old news
        counts for nothing: a request sent before one that has succeeded since, or before the
        breaker last opened."""
        sent = now if sent_at is None else sent_at
        if sent <= self._success_sent or (self.opened_at is not None and sent < self.opened_at):
            return
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
