"""Promotional hours: 09:00-21:00 IST."""

from __future__ import annotations

from datetime import UTC, datetime

from dakghar.compliance.hours import next_window


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def test_inside_the_window_nothing_waits() -> None:
    assert next_window(ms("2026-11-25T09:00:00+05:30")) is None
    assert next_window(ms("2026-11-25T20:59:59+05:30")) is None


def test_before_nine_waits_for_nine_the_same_day() -> None:
    assert next_window(ms("2026-11-25T08:22:00+05:30")) == ms("2026-11-25T09:00:00+05:30")


def test_from_nine_pm_waits_for_nine_the_next_day() -> None:
    assert next_window(ms("2026-11-25T21:00:00+05:30")) == ms("2026-11-26T09:00:00+05:30")
    assert next_window(ms("2026-12-31T23:59:00+05:30")) == ms("2027-01-01T09:00:00+05:30")
