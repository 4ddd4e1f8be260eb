"""The asyncio face: the same calls as ``Client``, awaited, over the same core."""

from __future__ import annotations

import asyncio
import uuid

import dakghar_client as dk
import pytest

from tests.sdk.conftest import Live
from tests.sdk.peers import proxy_to


async def test_async_send_get_list_batch_and_account(live: Live) -> None:
    reference = f"async-{uuid.uuid4().hex[:8]}"
    async with live.async_client() as client:
        sent = await asyncio.gather(*(client.messages.send(to="+919812345678", body=f"a{i}",
                                      reference=reference) for i in range(3)))  # fmt: skip
        assert len({m.id for m in sent}) == 3
        got = await client.messages.get(sent[0].id)
        assert got.id == sent[0].id and got.events is not None
        listed = [m.id async for m in client.messages.list(reference=reference, limit=2)]
        assert sorted(listed) == sorted(m.id for m in sent)
        batch = await client.messages.send_batch(to=["+919812345678", "1"], body="b")
        assert len(batch.accepted) == 1 and batch.rejected[0].code == "invalid_number"
        assert (await client.account.get()).name == "demo"


async def test_async_otp_and_errors(live: Live) -> None:
    async with live.async_client() as client:
        otp = await client.otp.send(to="+919812345672")
        checked = await client.otp.check(id=otp.id, code="0000000")
        assert checked.attempts_left == 4
        with pytest.raises(dk.InvalidNumber):
            await client.messages.send(to="12345", body="x")
        with pytest.raises(dk.NotFound):
            await client.campaigns.get("cmp_missing")


async def test_async_lost_answer_is_retried_with_the_same_key(live: Live) -> None:
    reference = f"async-lost-{uuid.uuid4().hex[:8]}"
    with proxy_to(live.url, ["lost:503", "drop"]) as proxy:
        async with live.async_client(proxy.url, backoff_base=0.01) as client:
            sent = await client.messages.send(to="+919812345678", body="x", reference=reference)
    posts = proxy.posts("/v1/messages")
    assert len(posts) == 3 and len({p.headers["Idempotency-Key"] for p in posts}) == 1
    async with live.async_client() as direct:
        assert [m.id async for m in direct.messages.list(reference=reference)] == [sent.id]
