"""Every Redis key and channel name of the coordination layer, in one place.

All names start with the fleet's prefix (``Settings.queue_prefix``), so several fleets, or test
runs, can share one Redis server without seeing each other.
"""

from __future__ import annotations


def limit(prefix: str, key: str) -> str:
    """The GCRA cell (theoretical arrival time, µs) of one limiter key."""
    return f"{prefix}rl:{key}"


def distinct(prefix: str, key: str) -> str:
    """The members seen in a window (a sorted set by time), e.g. numbers of one range."""
    return f"{prefix}ds:{key}"


def pacing(prefix: str, connector: str) -> str:
    """The GCRA cell of one connector's fleet-wide pacing."""
    return f"{prefix}pace:{connector}"


def lowered_rate(prefix: str, connector: str) -> str:
    """A connector's rate lowered for a while (after throttling), with a TTL."""
    return f"{prefix}pace-rate:{connector}"


def bind(prefix: str, connector: str, slot: int) -> str:
    """The lease (value: its owner) on one bind slot of a connector."""
    return f"{prefix}bind:{connector}:{slot}"


def channel(prefix: str, topic: str) -> str:
    """The pub/sub channel of one fan-out topic."""
    return f"{prefix}fan:{topic}"
