"""``iso``: RFC 3339 UTC with milliseconds, as ``datetime`` writes it, whatever it cached."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from dakghar.core.times import iso


def reference(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=(ms % 1000) * 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@given(st.lists(st.integers(0, 4_102_444_799_999), min_size=1, max_size=600))
def test_every_instant_is_written_as_datetime_writes_it(instants: list[int]) -> None:
    # Over 256 distinct seconds in a list: the cache is emptied and filled again meanwhile.
    for ms in instants + instants[::-1]:
        assert iso(ms) == reference(ms)


def test_an_absent_time_stays_absent_and_a_day_apart_is_a_day_apart() -> None:
    assert iso(None) is None
    assert iso(1_795_774_800_123) == "2026-11-27T10:20:00.123Z"
    assert iso(1_795_774_800_123 + 86_400_000) == "2026-11-28T10:20:00.123Z"
