"""Delivery analytics kept as hourly rollups, and the report built from them.

Each status change that matters to delivery rates adds one to a counter of the row for its
account, UTC hour, carrier, region, connector and type: ``sent`` counts as submitted,
``delivered`` as delivered (with how long it took after submission, in one of ten buckets),
and ``undelivered``/``expired``/``rejected``/``failed`` as failed. A report over any window then
reads only the rollup rows of that window: a few hundred rows for a day, whatever the traffic.
The median delivery time is interpolated inside its bucket, so it is an estimate whose error is
bounded by the bucket's width (fine at 1-2 s, coarser for slow reports).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dakghar.core.message import FAILED_STATUSES

HOUR_MS = 3_600_000
# Upper bounds (seconds) of the delivery-time buckets d0..d9; d9 is everything slower.
BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 300, 900, 3600, float("inf"))
FAILED = frozenset(s.value for s in FAILED_STATUSES)
GROUPS = ("carrier", "region", "connector", "type")
# Each process counts into rows of its own shard (migration 0013), summed when read: the
# dispatchers of a fleet settling the same account's messages at once would otherwise queue on
# each other's row locks, every transaction waiting for the other's to commit (2.4 s of lock
# waits per 8,000 messages with two dispatchers, bench/scaleout.py). Two processes whose pids
# agree modulo SHARDS share rows, which costs only that wait.
SHARDS = 64


_SHARD = [os.getpid() % SHARDS]  # read for every delivery report; os.getpid() is a syscall
os.register_at_fork(after_in_child=lambda: _SHARD.__setitem__(0, os.getpid() % SHARDS))


def shard() -> int:
    """This process's rollup shard."""
    return _SHARD[0]


def bucket(seconds: float) -> int:
    """The index of the bucket for a delivery that took ``seconds``."""
    for i, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return i
    return len(BUCKETS) - 1


def hour_of(ms: int) -> int:
    return ms - ms % HOUR_MS


@dataclass
class StatsRow:
    """One group of the report."""

    key: str
    submitted: int = 0
    delivered: int = 0
    failed: int = 0
    histogram: list[int] | None = None

    def as_dict(self) -> dict[str, object]:
        """The row as ``GET /v1/stats`` answers it."""
        return {
            "key": self.key,
            "submitted": self.submitted,
            "delivered": self.delivered,
            "failed": self.failed,
            "delivery_rate": self.delivery_rate,
            "p50_delivery_seconds": self.p50_delivery_seconds,
        }

    @property
    def delivery_rate(self) -> float | None:
        """Delivered over settled (delivered + failed); None before anything settled."""
        settled = self.delivered + self.failed
        return round(self.delivered / settled, 4) if settled else None

    @property
    def p50_delivery_seconds(self) -> float | None:
        hist = self.histogram or []
        total = sum(hist)
        if not total:
            return None
        half, seen, low = total / 2, 0, 0.0
        for count, high in zip(hist, BUCKETS, strict=True):
            if seen + count >= half:
                if high == float("inf"):
                    return low
                return round(low + (high - low) * (half - seen) / count, 2)
            seen += count
            low = high
        return low


def report(rows: Iterable[Sequence[object]]) -> list[StatsRow]:
    """Fold rollup rows ``(key, submitted, delivered, failed, d0..d9)`` into one row per key."""
    out: dict[str, StatsRow] = {}
    for r in rows:
        key = str(r[0]) or "unknown"
        row = out.setdefault(key, StatsRow(key, histogram=[0] * len(BUCKETS)))
        row.submitted += int(r[1])  # type: ignore[call-overload]
        row.delivered += int(r[2])  # type: ignore[call-overload]
        row.failed += int(r[3])  # type: ignore[call-overload]
        assert row.histogram is not None
        for i in range(len(BUCKETS)):
            row.histogram[i] += int(r[4 + i])  # type: ignore[call-overload]
    return sorted(out.values(), key=lambda s: (-s.submitted, s.key))
