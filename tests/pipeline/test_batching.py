"""The coalescer: many callers' items written in few calls, each caller getting its own result."""

from __future__ import annotations

import asyncio

import pytest

from dakghar.pipeline.batching import Coalescer


async def test_items_submitted_while_a_batch_is_written_share_the_next_call() -> None:
    calls: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        calls.append(list(items))
        await asyncio.sleep(0.01)  # a write in progress
        return [i * 10 for i in items]

    c: Coalescer[int, int] = Coalescer(flush)
    results = await asyncio.gather(*(c(i) for i in range(100)))
    assert results == [i * 10 for i in range(100)]
    assert calls[0] == [0] or len(calls[0]) >= 1
    assert len(calls) <= 3 and sum(map(len, calls)) == 100


async def test_a_lone_item_is_written_at_once() -> None:
    async def flush(items: list[str]) -> list[str]:
        return [s.upper() for s in items]

    c: Coalescer[str, str] = Coalescer(flush)
    assert await asyncio.wait_for(c("a"), 0.5) == "A"


async def test_one_bad_item_fails_alone() -> None:
    async def flush(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 13 in items:
            raise ValueError("unlucky")
        return items

    c: Coalescer[int, int] = Coalescer(flush)
    futures = [c.submit(i) for i in range(20)]
    done = await asyncio.gather(*futures, return_exceptions=True)
    assert isinstance(done[13], ValueError)
    assert [d for i, d in enumerate(done) if i != 13] == [i for i in range(20) if i != 13]


async def test_batches_never_exceed_max_batch() -> None:
    sizes: list[int] = []

    async def flush(items: list[int]) -> list[None]:
        sizes.append(len(items))
        await asyncio.sleep(0)
        return [None] * len(items)

    c: Coalescer[int, None] = Coalescer(flush, max_batch=7)
    await asyncio.gather(*(c(i) for i in range(50)))
    assert max(sizes) <= 7 and sum(sizes) == 50


async def test_close_waits_for_what_was_submitted() -> None:
    written: list[int] = []

    async def flush(items: list[int]) -> list[None]:
        await asyncio.sleep(0.02)
        written.extend(items)
        return [None] * len(items)

    c: Coalescer[int, None] = Coalescer(flush)
    for i in range(5):
        c.submit(i)
    await c.close()
    assert sorted(written) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n", [1, 3])
async def test_a_result_count_that_does_not_match_fails_the_callers(n: int) -> None:
    async def flush(items: list[int]) -> list[int]:
        return [0] * (len(items) + 1)

    c: Coalescer[int, int] = Coalescer(flush)
    with pytest.raises(ValueError):
        await asyncio.gather(*(c(i) for i in range(n)))
