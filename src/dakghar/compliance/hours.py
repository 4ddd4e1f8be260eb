"""Promotional hours: TRAI allows promotional SMS to Indian numbers only 09:00-21:00 IST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")
OPENS, CLOSES = 9, 21


def next_window(now_ms: int) -> int | None:
    """None inside the window; otherwise the epoch ms of the next 09:00 IST."""
    local = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(IST)
    if OPENS <= local.hour < CLOSES:
        return None
    opens = local.replace(hour=OPENS, minute=0, second=0, microsecond=0)
    if local.hour >= CLOSES:
        opens += timedelta(days=1)
    return int(opens.timestamp() * 1000)
