"""The client's sans-IO core: retry decisions, backoff bounds, Retry-After, error mapping.

Pure: these feed real ``httpx.Response`` values to ``Attempts`` and read its decisions; the
end-to-end behaviour of the same code is in ``test_retries.py``.
"""

from __future__ import annotations

import email.utils
import inspect
import time

import dakghar_client as dk
import httpx
import pytest
from dakghar_client._core import Attempts, Config, Operation, retry_after_seconds
from dakghar_client._operations import check_otp, get_message, send_message


def answer(status: int, **headers: str) -> httpx.Response:
    problem = {"title": "t", "status": status, "detail": "d", "code": "rate_limited"}
    return httpx.Response(status, json=problem, headers=headers)


def attempts(op: Operation[object] | None = None, **config: float) -> Attempts[object]:
    return Attempts(op or get_message("msg_1"), Config("test_k", **config))  # type: ignore[arg-type]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds(answer(429, **{"Retry-After": "3"})) == 3
    date = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 18 <= (retry_after_seconds(answer(429, **{"Retry-After": date})) or 0) <= 20
    assert retry_after_seconds(answer(429, **{"Retry-After": "soon"})) is None
    assert retry_after_seconds(answer(429)) is None


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    state = attempts(max_retries=50, backoff_base=0.5, backoff_max=4.0)
    waits = [state.answered(answer(503)) for _ in range(50)]
    ceilings = [min(4.0, 0.5 * 2**n) for n in range(50)]
    assert all(w is not None and 0 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert len({round(w or 0, 6) for w in waits}) > 40  # random, not in step


def test_retries_stop_at_max_retries_and_on_final_statuses() -> None:
    state = attempts(max_retries=2)
    assert state.answered(answer(500)) is not None and state.answered(answer(502)) is not None
    assert state.answered(answer(503)) is None  # the third retry is not made
    for status in (200, 400, 404, 409, 422):
        assert attempts().answered(answer(status)) is None


def test_calls_the_gateway_cannot_deduplicate_retry_only_when_not_acted_on() -> None:
    check = check_otp(code="123456", id="otp_1")
    assert attempts(check).answered(answer(503)) is None
    assert attempts(check).answered(answer(429, **{"Retry-After": "1"})) == 1
    with pytest.raises(dk.NetworkError):
        attempts(check).failed(httpx.ReadError("reset"))
    assert attempts(check).failed(httpx.ConnectError("refused")) >= 0


def test_one_key_per_logical_call() -> None:
    op = send_message(to="+919812345678", body="x")
    state = attempts(op)  # type: ignore[arg-type]
    first, second = state.request(), state.request()
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert (
        first.headers["Idempotency-Key"]
        != attempts(
            send_message(to="+919812345678", body="x")  # type: ignore[arg-type]
        )
        .request()
        .headers["Idempotency-Key"]
    )
    assert first.headers["Authorization"] == "Bearer test_k"


def test_error_answers_become_their_classes_and_non_json_is_kept() -> None:
    state = attempts()
    with pytest.raises(dk.RateLimited) as caught:
        state.result(answer(429, **{"Retry-After": "7"}))
    assert caught.value.retry_after == 7
    with pytest.raises(dk.ApiError) as plain:
        state.result(httpx.Response(502, text="<html>bad gateway</html>"))
    assert type(plain.value) is dk.ApiError and plain.value.code is None
    assert "bad gateway" in plain.value.detail


async def test_both_faces_offer_the_same_calls_with_the_same_signatures() -> None:
    with dk.Client("test_k") as sync:
        async with dk.AsyncClient("test_k") as aio:
            for resource in ("messages", "otp", "campaigns", "account"):
                s, a = getattr(sync, resource), getattr(aio, resource)
                names = {n for n in dir(s) if not n.startswith("_")}
                assert names == {n for n in dir(a) if not n.startswith("_")} and names
                for name in names:
                    sig = inspect.signature(getattr(s, name))
                    assert sig == inspect.signature(getattr(a, name)), (resource, name)
