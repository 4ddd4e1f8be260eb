"""``open_coordinator`` picks the coordinator from DAKGHAR_QUEUE_URL; ``pace`` is exact."""

from __future__ import annotations

import pytest

from dakghar.coord import LocalCoordinator, open_coordinator
from dakghar.coord.local import pace
from dakghar.settings import Settings, load_settings


async def test_no_queue_url_means_the_in_process_coordinator() -> None:
    coordinator = open_coordinator(Settings())
    assert isinstance(coordinator, LocalCoordinator)
    assert coordinator.shared is False
    await coordinator.close()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6380/1"])
async def test_a_redis_url_means_the_redis_coordinator(url: str) -> None:
    from dakghar.coord.redis import RedisCoordinator

    coordinator = open_coordinator(Settings(queue_url=url, queue_prefix="fleet-a:"))
    assert isinstance(coordinator, RedisCoordinator)
    assert coordinator.shared is True
    assert coordinator.prefix == "fleet-a:"
    await coordinator.close()


def test_another_scheme_is_refused_naming_the_variable_but_not_the_password() -> None:
    with pytest.raises(ValueError, match="DAKGHAR_QUEUE_URL") as err:
        open_coordinator(Settings(queue_url="amqp://user:s3cret@host/"))
    assert "s3cret" not in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="no scheme"):
        open_coordinator(Settings(queue_url="127.0.0.1:6379"))


def test_the_prefix_comes_from_the_environment() -> None:
    env = {"DAKGHAR_QUEUE_PREFIX": "blue:", "DAKGHAR_CONFIG": "/nonexistent"}
    settings = load_settings(env=env)
    assert settings.queue_prefix == "blue:"
    assert Settings().queue_prefix == "dakghar:"


def test_pace_grants_the_slots_due_within_the_horizon() -> None:
    tat, offsets, retry = pace(0.0, 10.0, 100, 1, 50, 0.05)
    assert offsets == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    assert tat == pytest.approx(10.06)
    assert retry == 0.0
    tat, offsets, retry = pace(tat, 10.0, 100, 1, 50, 0.05)
    assert offsets == []
    assert retry == pytest.approx(0.01)


def test_pace_lets_a_burst_go_at_once_and_stops_at_want() -> None:
    tat, offsets, _ = pace(0.0, 5.0, 10, 4, 3, 0.05)
    assert offsets == [0.0, 0.0, 0.0]
    _, offsets, _ = pace(tat, 5.0, 10, 4, 10, 0.05)
    assert offsets == [0.0]  # the burst's fourth; the fifth is 100 ms away
    assert pace(0.0, 5.0, 10, 4, 0, 0.05)[1:] == ([], 0.0)
