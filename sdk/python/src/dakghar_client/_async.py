"""The asyncio face: :class:`AsyncClient`, over ``httpx.AsyncClient``.

It only sends the requests that ``_core.Attempts`` builds and sleeps for the waits it asks
for; every method is an ``_operations`` function bound here, so it has the same signature
and behaviour as its twin in ``_sync``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from dakghar_client import _operations as ops
from dakghar_client._core import DEFAULT_BASE_URL, Attempts, Config, Operation, Page, as_method

P = ParamSpec("P")
T = TypeVar("T")


class _Resource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


def _bind(
    fn: Callable[P, Operation[T]],
) -> Callable[Concatenate[_Resource, P], Coroutine[Any, Any, T]]:
    async def method(self: _Resource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._client._execute(fn(*args, **kwargs))

    as_method(method, fn)
    return method


def _bind_pages(
    fn: Callable[P, Operation[Page[T]]],
) -> Callable[Concatenate[_Resource, P], AsyncIterator[T]]:
    def method(self: _Resource, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        return self._client._iterate(fn(*args, **kwargs))

    as_method(method, fn)
    return method


class Messages(_Resource):
    """``client.messages``: send, read, list, cancel."""

    send = _bind(ops.send_message)
    send_batch = _bind(ops.send_batch)
    get = _bind(ops.get_message)
    list = _bind_pages(ops.list_messages)
    cancel = _bind(ops.cancel_message)


class Otps(_Resource):
    """``client.otp``: verify a number with a one-time code."""

    send = _bind(ops.send_otp)
    check = _bind(ops.check_otp)
    resend = _bind(ops.resend_otp)


class Campaigns(_Resource):
    """``client.campaigns``: bulk sends from a CSV."""

    create = _bind(ops.create_campaign)
    get = _bind(ops.get_campaign)
    pause = _bind(ops.pause_campaign)
    resume = _bind(ops.resume_campaign)
    cancel = _bind(ops.cancel_campaign)
    report = _bind(ops.campaign_report)


class AccountResource(_Resource):
    """``client.account``: settings and the webhook secret."""

    get = _bind(ops.get_account)
    update = _bind(ops.update_account)
    webhook_secret = _bind(ops.get_webhook_secret)
    rotate_webhook_secret = _bind(ops.rotate_webhook_secret)


class AsyncClient:
    """A Dakghar API client for asyncio: ``async with AsyncClient(key) as client``, or
    ``await client.aclose()``; the same methods as :class:`Client`, awaited.

    ``max_retries`` bounds the retries of one call (429, 5xx and connection errors), waiting
    ``Retry-After`` when the gateway sends one (up to ``max_retry_wait`` seconds) and otherwise
    a random time up to ``backoff_base * 2**n`` (at most ``backoff_max``). ``timeout`` is per
    request, in seconds. ``http_client`` lets you bring your own httpx client (proxies, TLS
    settings, event hooks); it is left open by :meth:`close`.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_wait: float = 10.0,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = Config(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_wait=max_retry_wait,
            extra_headers=dict(headers or {}),
        )
        self._owns_http = http_client is None  # one passed in is the caller's to close
        self._http = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self.messages = Messages(self)
        self.otp = Otps(self)
        self.campaigns = Campaigns(self)
        self.account = AccountResource(self)

    async def _execute(self, operation: Operation[T]) -> T:
        attempts = Attempts(operation, self._config)
        while True:
            try:
                response = await self._http.send(attempts.request())
            except httpx.TransportError as exc:
                wait = attempts.failed(exc)
            else:
                answered = attempts.answered(response)
                if answered is None:
                    return attempts.result(response)
                wait = answered
            await asyncio.sleep(wait)

    async def _iterate(self, first: Operation[Page[T]]) -> AsyncIterator[T]:
        operation: Operation[Page[T]] | None = first
        while operation is not None:
            page = await self._execute(operation)
            for item in page.items:
                yield item
            operation = page.next

    async def aclose(self) -> None:
        """Close the connection pool (not that of an ``http_client`` passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
