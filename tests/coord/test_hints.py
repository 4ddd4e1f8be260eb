"""Wake-up hints cross the fleet through fan-out, on both coordinators."""

from __future__ import annotations

import asyncio

from dakghar.coord import Coordinator
from dakghar.coord.hints import HintPublisher, listen_hints
from dakghar.coord.redis import RedisCoordinator
from dakghar.pipeline.wakeup import Hint
from dakghar.store.base import MessageRow

from .conftest import needs_redis


def row(account: str, lane: int, due: int, status: str = "queued") -> MessageRow:
    fields = dict.fromkeys(MessageRow.__dataclass_fields__)
    fields.update(
        id=f"msg_{account}_{due}", account_id=account, lane=lane, status=status,
        next_attempt_at=due, created_at=due, lease_until=None,
    )  # fmt: skip
    return MessageRow(**fields)  # type: ignore[arg-type]


async def test_accepts_of_one_turn_wake_another_process_with_one_publish(
    pair: tuple[Coordinator, Coordinator],
) -> None:
    api, dispatcher = pair
    got: asyncio.Queue[list[Hint]] = asyncio.Queue()
    sub = listen_hints(dispatcher, got.put_nowait)
    await sub.ready()
    publisher = HintPublisher(api)
    publisher([row("acc_a", 1, 500), row("acc_a", 1, 300)])
    publisher([row("acc_b", 0, 900), row("acc_c", 2, 100, status="scheduled")])
    hints = await asyncio.wait_for(got.get(), 1.0)
    assert sorted(hints) == [(0, "acc_b", 900), (1, "acc_a", 300)]
    await publisher.close()
    assert (publisher.sent, publisher.dropped) == (1, 0)
    sub.close()


@needs_redis
async def test_an_unreachable_redis_drops_hints_without_failing_the_accept() -> None:
    dead = RedisCoordinator("redis://127.0.0.1:1/0", prefix="x:", timeout=0.2)
    publisher = HintPublisher(dead)
    try:
        publisher([row("acc_a", 1, 5)])  # returns at once: the publish runs in a task
        await asyncio.sleep(0)
        await publisher.close()
        assert (publisher.sent, publisher.dropped) == (0, 1)
    finally:
        await dead.close()
