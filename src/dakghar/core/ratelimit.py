"""GCRA (generic cell rate algorithm) rate limiting, pure and in-process.

One algorithm serves API-key limits (429 with an exact ``Retry-After``), per-number/OTP velocity
limits and, later, connector pacing ("await the next slot"). A Redis twin of the same arithmetic
comes with the scale-out backends. Time is passed in, so the limiter is deterministic under test.
"""

from __future__ import annotations

from dataclasses import dataclass

# Tolerance of the comparison: 1 ns, far below any rate limit's resolution (Redis counts µs).
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one limiter check."""

    allowed: bool
    retry_after: float  # seconds until a request would be allowed (0 when allowed)
    remaining: int


class Gcra:
    """A keyed GCRA limiter: ``rate`` requests per second with a ``burst`` allowance."""

    __slots__ = ("_burst_tolerance", "_emission", "_max_keys", "_tat", "burst", "rate")

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._emission = 1.0 / rate
        self._burst_tolerance = self._emission * (burst - 1)
        self._tat: dict[str, float] = {}
        self._max_keys = max_keys

    def hit(self, key: str, now: float, cost: int = 1) -> Decision:
        """Account ``cost`` requests for ``key`` at time ``now`` (monotonic seconds)."""
        tat = self._tat.get(key, now)
        tat = max(tat, now)
        new_tat = tat + self._emission * cost
        allow_at = new_tat - self._burst_tolerance - self._emission
        if allow_at > now + _EPSILON:  # float sums of 1/rate must not eat the last burst slot
            return Decision(False, allow_at - now, 0)
        if len(self._tat) >= self._max_keys and key not in self._tat:
            self._evict(now)
        self._tat[key] = new_tat
        left = (self._burst_tolerance + self._emission - (new_tat - now)) / self._emission
        remaining = int(left + _EPSILON)
        return Decision(True, 0.0, max(0, remaining))

    def _evict(self, now: float) -> None:
        # Keys whose TAT lies in the past are at full allowance: forgetting them changes nothing.
        stale = [k for k, t in self._tat.items() if t <= now]
        for k in stale:
            del self._tat[k]
        if len(self._tat) >= self._max_keys:
            self._tat.clear()
