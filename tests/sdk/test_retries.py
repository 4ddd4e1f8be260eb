"""Retries through a scripted proxy in front of the real gateway: a lost answer, a dropped
connection, 429 with Retry-After, 503 until the retries run out, and calls never replayed."""

from __future__ import annotations

import time
import uuid

import dakghar_client as dk
import pytest

from tests.sdk.conftest import Live
from tests.sdk.peers import proxy_to

FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


def test_lost_answer_is_retried_with_the_same_key_and_sends_once(live: Live) -> None:
    reference = f"lost-{uuid.uuid4().hex[:8]}"
    with proxy_to(live.url, ["lost:503"]) as proxy, live.client(proxy.url, **FAST) as client:
        sent = client.messages.send(to="+919812345678", body="once", reference=reference)
    posts = proxy.posts("/v1/messages")
    assert [p.answered for p in posts] == [503, 202]  # the gateway acted on both
    keys = {p.headers["Idempotency-Key"] for p in posts}
    assert len(keys) == 1 and keys.pop().startswith("dkc-")
    with live.client() as direct:
        created = list(direct.messages.list(reference=reference))
    assert [m.id for m in created] == [sent.id]  # the retry replayed the first answer


def test_dropped_connection_is_retried_and_creates_one_batch(live: Live) -> None:
    reference = f"drop-{uuid.uuid4().hex[:8]}"
    with proxy_to(live.url, ["drop"]) as proxy, live.client(proxy.url, **FAST) as client:
        result = client.messages.send_batch(to=["+919812345678", "+919812345679"],
                                            body="b", reference=reference)  # fmt: skip
    posts = proxy.posts("/v1/messages/batch")
    assert len(posts) == 2 and len({p.headers["Idempotency-Key"] for p in posts}) == 1
    assert len(result.accepted) == 2
    with live.client() as direct:
        assert len(list(direct.messages.list(reference=reference))) == 2


def test_each_logical_call_gets_its_own_key_and_a_given_key_is_kept(live: Live) -> None:
    with proxy_to(live.url) as proxy, live.client(proxy.url) as client:
        a = client.messages.send(to="+919812345678", body="a")
        b = client.messages.send(to="+919812345678", body="a")
        c = client.messages.send(to="+919812345678", body="a", idempotency_key=f"k-{a.id}")
        d = client.messages.send(to="+919812345678", body="a", idempotency_key=f"k-{a.id}")
    keys = [p.headers["Idempotency-Key"] for p in proxy.posts("/v1/messages")]
    assert keys[0] != keys[1] and keys[2] == keys[3] == f"k-{a.id}"
    assert len({a.id, b.id, c.id}) == 3 and d.id == c.id


def test_retry_after_is_waited_before_the_retry(live: Live) -> None:
    with proxy_to(live.url, ["429:1"]) as proxy, live.client(proxy.url, **FAST) as client:
        started = time.monotonic()
        account = client.account.get()
        elapsed = time.monotonic() - started
    assert account.name == "demo"
    assert [s.answered for s in proxy.seen] == [429, 200]
    assert 1.0 <= elapsed < 3.0


def test_a_long_retry_after_is_raised_not_slept(live: Live) -> None:
    with proxy_to(live.url, ["429:120"]) as proxy, live.client(proxy.url, **FAST) as client:
        started = time.monotonic()
        with pytest.raises(dk.RateLimited) as caught:
            client.account.get()
    assert caught.value.retry_after == 120 and time.monotonic() - started < 1
    assert len(proxy.seen) == 1


def test_server_errors_are_retried_max_retries_times_then_raised(live: Live) -> None:
    with (
        proxy_to(live.url, ["503"] * 10) as proxy,
        live.client(proxy.url, max_retries=2, **FAST) as client,
        pytest.raises(dk.ApiError) as caught,
    ):
        client.messages.get("msg_x")
    assert len(proxy.seen) == 3  # one try and two retries
    assert caught.value.status == 503 and type(caught.value) is dk.ApiError
    assert caught.value.code == "unavailable"


def test_otp_check_is_not_replayed_after_a_server_error(live: Live) -> None:
    with (
        proxy_to(live.url, ["503"]) as proxy,
        live.client(proxy.url, **FAST) as client,
        pytest.raises(dk.ApiError) as caught,
    ):
        client.otp.check(code="123456", to="+919812345670")
    assert caught.value.status == 503 and len(proxy.seen) == 1  # an attempt is not spent twice


def test_unreachable_gateway_raises_network_error_after_retries(live: Live) -> None:
    with proxy_to(live.url) as proxy:
        dead = proxy.url  # a port that was just closed
    with live.client(dead, max_retries=1, **FAST) as client, pytest.raises(dk.NetworkError):
        client.messages.send(to="+919812345678", body="nowhere")
