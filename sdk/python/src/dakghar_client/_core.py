"""The I/O-free core shared by :class:`Client` and :class:`AsyncClient`.

An :class:`Operation` says what one API call sends and how its answer is read; an
:class:`Attempts` turns it into ``httpx.Request`` objects and decides, after each answer or
transport error, whether to retry and how long to wait. The two faces (``_sync``, ``_async``)
only send requests and sleep, so both behave the same by construction, in the way httpcore
keeps one connection logic under two transports. The calls themselves live in ``_operations``.
"""

from __future__ import annotations

import email.utils
import inspect
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from dakghar_client.errors import ApiError, NetworkError, error_for

T = TypeVar("T")

VERSION = "0.1.0"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def new_idempotency_key() -> str:
    """A fresh key for one logical call, reused by every retry of that call."""
    return f"dkc-{uuid.uuid4()}"


@dataclass(frozen=True)
class Operation(Generic[T]):
    """One API call: the request to send and how to read a successful answer.

    ``replayable`` says whether sending it twice is harmless (a GET, or a POST the gateway
    deduplicates by ``Idempotency-Key``). One that is not is retried only when the gateway
    certainly did not act on it: a 429, or a connection that was never made.
    """

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, str] | None = None
    json: Any = None
    data: Mapping[str, str] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    idempotency_key: str | None = None
    replayable: bool = True


@dataclass(frozen=True)
class Config:
    """What every call of one client shares (see ``Client`` for the meaning of each)."""

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_wait: float = 10.0
    user_agent: str = f"dakghar-client/{VERSION} (python; httpx)"
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        """Headers every request carries (the key goes only in ``Authorization``)."""
        return {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": self.user_agent,
            "Accept": "application/json",
            **self.extra_headers,
        }


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def api_error(response: httpx.Response) -> ApiError:
    """The typed error for an error answer, problem+json or not."""
    retry_after = retry_after_seconds(response)
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        text = response.text[:200]
        problem = {"title": response.reason_phrase, "detail": text}
    return error_for(response.status_code, problem, retry_after)


class Attempts(Generic[T]):
    """The retry state of one logical call (sans-IO: the caller sends and sleeps).

    Backoff is exponential with full jitter: before retry n (from 0) a random wait from 0 to
    ``base * 2**n``, at most ``backoff_max``, so many clients hit by one outage do not come back
    in step. A ``Retry-After`` is waited exactly, unless it is longer than ``max_retry_wait``:
    then the error is raised for the caller to decide (an OTP resend cooldown is minutes, not
    something to block on).
    """

    def __init__(self, operation: Operation[T], config: Config) -> None:
        self.operation = operation
        self.config = config
        self.attempt = 0  # retries made so far

    def request(self) -> httpx.Request:
        """The next request to send (rebuilt each time: a multipart stream is read once)."""
        op, config = self.operation, self.config
        headers = config.headers()
        if op.idempotency_key is not None:
            headers["Idempotency-Key"] = op.idempotency_key
        return httpx.Request(
            op.method,
            config.base_url.rstrip("/") + op.path,
            params=dict(op.params) if op.params else None,
            json=op.json,
            data=dict(op.data) if op.data is not None else None,
            files=dict(op.files) if op.files is not None else None,
            headers=headers,
            # per request, so that it holds for an ``http_client`` passed in as well
            extensions={"timeout": httpx.Timeout(config.timeout).as_dict()},
        )

    def _backoff(self) -> float:
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2**self.attempt)
        return random.uniform(0, ceiling)

    def answered(self, response: httpx.Response) -> float | None:
        """After an answer: seconds to wait before retrying, or None when it is final."""
        status = response.status_code
        if status not in RETRY_STATUSES or self.attempt >= self.config.max_retries:
            return None
        if status != 429 and not self.operation.replayable:
            return None
        wait = retry_after_seconds(response)
        if wait is not None and wait > self.config.max_retry_wait:
            return None
        wait = wait if wait is not None else self._backoff()
        self.attempt += 1
        return wait

    def failed(self, exc: httpx.TransportError) -> float:
        """After a transport error: seconds to wait, or raise :class:`NetworkError`."""
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        retry = self.operation.replayable or never_sent
        if not retry or self.attempt >= self.config.max_retries:
            raise NetworkError(f"{self.operation.method} {self.operation.path}: {exc}") from exc
        wait = self._backoff()
        self.attempt += 1
        return wait

    def result(self, response: httpx.Response) -> T:
        """The call's value, or the typed :class:`ApiError` for an error answer."""
        if response.is_success:
            return self.operation.read(response)
        raise api_error(response)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the operation that fetches the next (None on the last)."""

    items: list[T]
    next: Operation[Page[T]] | None


def pager(
    path: str, params: Mapping[str, str], item: Callable[[dict[str, Any]], T]
) -> Operation[Page[T]]:
    """The operation for the first page of a list that follows ``next_cursor`` (API.md)."""

    def read(response: httpx.Response) -> Page[T]:
        body = response.json()
        cursor = body.get("next_cursor")
        following = pager(path, {**params, "cursor": cursor}, item) if cursor else None
        return Page([item(d) for d in body.get("data", [])], following)

    return Operation("GET", path, read, params=params)


def as_method(method: Callable[..., Any], operation: Callable[..., Any]) -> None:
    """Give a face's method its operation's docstring and signature (plus ``self``), so that
    ``help()`` and editors show the real parameters."""
    signature = inspect.signature(operation)
    me = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[me, *signature.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    method.__doc__ = operation.__doc__
    method.__name__ = method.__qualname__ = operation.__name__
