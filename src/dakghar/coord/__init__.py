"""Coordination of a fleet of Dakghar processes: shared limits, fan-out, pacing, bind leases.

``open_coordinator(settings)`` picks the implementation from ``DAKGHAR_QUEUE_URL``: unset means
this process alone (``coord.local``), ``redis://`` or ``rediss://`` means the fleet shares one
Redis (``coord.redis``). The interface is in ``coord.base``.
"""

from __future__ import annotations

from dakghar.coord.base import (
    PACING_HORIZON,
    BindLeases,
    CoordinationUnavailable,
    Coordinator,
    FanOut,
    Grant,
    LimitCheck,
    Limiter,
    MessageCallback,
    Pacer,
    Subscription,
    Topic,
    messages,
)
from dakghar.coord.hints import HintPublisher, listen_hints
from dakghar.coord.leases import BindLease
from dakghar.coord.local import LocalCoordinator
from dakghar.settings import Settings

__all__ = [
    "PACING_HORIZON",
    "BindLease",
    "BindLeases",
    "CoordinationUnavailable",
    "Coordinator",
    "FanOut",
    "Grant",
    "HintPublisher",
    "LimitCheck",
    "Limiter",
    "LocalCoordinator",
    "MessageCallback",
    "Pacer",
    "Subscription",
    "Topic",
    "check_queue_url",
    "listen_hints",
    "messages",
    "open_coordinator",
]


def check_queue_url(settings: Settings) -> None:
    """Refuse a ``DAKGHAR_QUEUE_URL`` no coordinator speaks (``ValueError``, one line)."""
    url = settings.queue_url
    if not url:
        return
    if url.partition("://")[0].lower() not in ("redis", "rediss"):
        open_coordinator(settings)  # raises, naming the variable
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise ValueError(
            "DAKGHAR_QUEUE_URL names Redis, which needs redis-py: pip install 'dakghar[redis]'"
        ) from exc


def open_coordinator(settings: Settings) -> Coordinator:
    """The coordinator ``settings.queue_url`` names (the Redis one is imported only if used)."""
    url = settings.queue_url
    if not url:
        return LocalCoordinator()
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss"):
        try:
            from dakghar.coord.redis import RedisCoordinator
        except ImportError as exc:
            raise ValueError(
                "DAKGHAR_QUEUE_URL names Redis, which needs redis-py: pip install 'dakghar[redis]'"
            ) from exc

        return RedisCoordinator(url, prefix=settings.queue_prefix)
    # Only the scheme is echoed: the rest of the URL may hold a password.
    got = f"{scheme}://" if "://" in url else "no scheme"
    raise ValueError(f"DAKGHAR_QUEUE_URL must start with redis:// or rediss:// (got {got})")
