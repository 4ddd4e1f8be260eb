"""Retry timing: exponential backoff with jitter, and when to move to the next connector.

Temporary failures (throttled, queue full, timeout, connection lost, HTTP 429/5xx) are retried
until the message's validity ends; the dispatcher asks this policy how long to wait before
attempt ``n`` and after how many attempts on one connector to fail over to the next one.
Jitter spreads retries so a carrier recovering from an outage is not hit by a synchronized wave.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``base * factor**(attempt-1)`` seconds, capped at ``max_delay``, with jitter."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: str = "equal"  # "full": uniform(0, d); "equal": uniform(d/2, d)
    max_attempts_per_connector: int = 3

    def __post_init__(self) -> None:
        if self.base <= 0 or self.factor < 1 or self.max_delay < self.base:
            raise ValueError("need base > 0, factor >= 1 and max_delay >= base")
        if self.jitter not in ("full", "equal"):
            raise ValueError("jitter must be 'full' or 'equal'")
        if self.max_attempts_per_connector < 1:
            raise ValueError("max_attempts_per_connector must be >= 1")

    def next_delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retrying after failed attempt number ``attempt`` (from 1)."""
        ceiling = min(self.max_delay, self.base * self.factor ** min(max(attempt, 1) - 1, 60))
        if self.jitter == "full":
            return rng.uniform(0.0, ceiling)
        return rng.uniform(ceiling / 2, ceiling)

    @classmethod
    def from_settings(cls, table: Mapping[str, Any]) -> RetryPolicy:
        """From a ``[retry]`` table; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"unknown retry settings {unknown}; known: {sorted(known)}")
        return cls(**dict(table))
