"""Shared machinery for HTTP provider connectors (Twilio, MSG91, Plivo, Vonage, ...).

A provider module only says how to build one request, how to read the provider's answer and
how to verify and parse its delivery-report callback; everything else lives here, once:

- one pooled :class:`aiohttp.ClientSession` per connector (keep-alive, at most ``max_in_flight``
  connections, so the pool is the concurrency limit the dispatcher's pacer already respects);
- timeouts, and the mapping of transport failures onto :class:`ConnectorError`:

  ==========================================  =================================================
  what happened                               what the dispatcher is told
  ==========================================  =================================================
  connection refused / connect timed out      temporary (nothing left us)
  timeout or connection lost after sending    temporary, ``maybe_sent`` (the provider may have it)
  HTTP 429                                    temporary, ``slow_down``; nothing more is sent
                                              until its ``Retry-After`` (at most 60 s) passes
  HTTP 5xx                                    temporary
  HTTP 4xx                                    the provider's error, mapped by its module
  ==========================================  =================================================

- the ``?secret=`` check for providers that do not sign their callbacks;
- optional balance polling, shown as ``balance`` in :meth:`HttpConnector.state`, with a
  ``low_balance`` threshold that logs a warning once per dip and flags ``low_balance`` there.

The dispatcher paces, retries, fails over and keeps the circuit breaker, so :meth:`submit` makes
exactly one attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import aiohttp
import msgspec

from dakghar.connectors.base import Accepted, ConnectorError, Outbound, Report, ReportSink
from dakghar.core.message import ErrorCode
from dakghar.observability.logging import get_logger

log = get_logger("dakghar.connectors.http")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """What every HTTP provider connector is configured with (besides its credentials)."""

    base_url: str
    rate: float = 0.0  # requests per second the provider allows; 0 = no limit
    max_in_flight: int = 64  # concurrent requests = pooled connections
    timeout: float = 10.0  # whole request, seconds
    connect_timeout: float = 3.0  # connecting (and waiting for a pooled connection)
    status_callback_url: str | None = None  # our public POST /v1/connectors/{name}/callback
    callback_secret: str | None = None  # for providers that do not sign: ?secret= on the URL
    balance_interval: float = 0.0  # seconds between balance polls; 0 = never
    low_balance: float = 0.0  # warn (log and state) when the polled balance falls below this


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request a provider module wants made (the path is joined to ``base_url``)."""

    method: str
    path: str
    form: Mapping[str, str] | None = None
    json: Any = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    """The provider's HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError:
            return None


@dataclass(frozen=True, slots=True)
class Callback:
    """An inbound callback as the provider sent it (the API layer builds this)."""

    url: str  # the full URL the provider requested, query included
    method: str
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]
    form: Mapping[str, str]  # form fields, when the body is form-encoded
    body: bytes


class CallbackRejected(Exception):
    """The callback's signature (or shared secret) does not check out."""


@runtime_checkable
class CallbackReceiver(Protocol):
    """A connector that takes delivery reports over ``POST /v1/connectors/{name}/callback``."""

    def receive(self, callback: Callback) -> list[Report]:
        """Verify (raise :class:`CallbackRejected`) and parse (raise ValueError) a callback."""


def secret_matches(callback: Callback, secret: str | None) -> None:
    """The shared-secret check for providers that do not sign: ``?secret=`` must match."""
    given = callback.query.get("secret", "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        raise CallbackRejected("the callback's secret does not match")


def callback_url(url: str, secret: str | None) -> str:
    """``url`` with ``secret`` as a query parameter, when there is one."""
    if not secret:
        return url
    return f"{url}{'&' if '?' in url else '?'}secret={secret}"


class HttpConnector:
    """The dispatcher's view of one HTTP provider; subclasses fill in the provider's dialect."""

    type: ClassVar[str] = "http"

    def __init__(self, name: str, settings: HttpSettings) -> None:
        self.name = name
        self.settings = settings
        self.rate_per_second = settings.rate
        self.max_in_flight = settings.max_in_flight
        self.balance: float | None = None
        self.low_balance = False
        self.in_flight = 0
        self.reports = 0
        self.counters = {"submitted": 0, "accepted": 0, "refused": 0, "errors": 0, "throttled": 0}
        self._session: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None
        self._base = settings.base_url.rstrip("/")
        self._quiet_until = 0.0  # monotonic time before which the provider asked for quiet

    # -- what a provider module fills in -----------------------------------------------------

    def build(self, message: Outbound) -> Request:
        """The provider's send request for ``message``."""
        raise NotImplementedError

    def accepted(self, answer: Answer) -> Accepted:
        """Read a 2xx answer: the provider's ids, or raise :class:`ConnectorError` (some
        providers answer 200 with an error inside)."""
        raise NotImplementedError

    def refused(self, answer: Answer) -> ConnectorError:
        """The error for a 4xx answer (other than 429), from the provider's error code."""
        raise NotImplementedError

    def balance_request(self) -> Request | None:
        """The provider's balance request, if it has one."""
        return None

    def read_balance(self, answer: Answer) -> float | None:
        """The balance in a balance answer."""
        return None

    # -- Connector ---------------------------------------------------------------------------

    async def start(self, on_report: ReportSink) -> None:
        """Open the pooled session. Reports do not come through ``on_report``: providers post
        them to the callback endpoint, which hands them to the dispatcher."""
        s = self.settings
        connector = aiohttp.TCPConnector(limit=s.max_in_flight, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=s.timeout, connect=min(s.connect_timeout, s.timeout))
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        if s.balance_interval > 0 and self.balance_request() is not None:
            self._poller = asyncio.create_task(self._poll_balance(), name=f"{self.name}-balance")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def ready(self) -> bool:
        return self._session is not None and not self._session.closed

    def state(self) -> dict[str, Any]:
        return {"type": self.type, "balance": self.balance, "low_balance": self.low_balance,
                "in_flight": self.in_flight, "reports": self.reports,
                **self.counters}  # fmt: skip

    async def submit(self, message: Outbound) -> Accepted:
        wait = self._quiet_until - time.monotonic()
        if wait > 0:
            raise ConnectorError(f"{self.name}: provider asked for quiet ({wait:.1f}s left)",
                                 temporary=True, slow_down=True,
                                 error_code=ErrorCode.CONNECTOR_UNAVAILABLE)  # fmt: skip
        self.counters["submitted"] += 1
        answer = await self.call(self.build(message))
        if answer.status == 429:
            self.counters["throttled"] += 1
            self._quiet_until = time.monotonic() + _retry_after(answer.headers)
            raise ConnectorError(f"{self.name}: HTTP 429 (rate limited)", temporary=True,
                                 slow_down=True,
                                 error_code=ErrorCode.CONNECTOR_UNAVAILABLE)  # fmt: skip
        if answer.status >= 500:
            self.counters["errors"] += 1
            raise ConnectorError(f"{self.name}: HTTP {answer.status}", temporary=True,
                                 error_code=ErrorCode.CONNECTOR_UNAVAILABLE)  # fmt: skip
        if answer.status >= 400:
            self.counters["refused"] += 1
            raise self.refused(answer)
        try:
            result = self.accepted(answer)
        except ConnectorError:
            self.counters["refused"] += 1
            raise
        self.counters["accepted"] += 1
        return result

    def receive(self, callback: Callback) -> list[Report]:
        """Verify a callback and parse it into reports (:class:`CallbackReceiver`)."""
        self.verify(callback)
        reports = self.parse(callback)
        self.reports += len(reports)
        return reports

    def verify(self, callback: Callback) -> None:
        """Raise :class:`CallbackRejected` unless the provider sent this (default: the shared
        secret on the URL, for providers that do not sign)."""
        secret_matches(callback, self.settings.callback_secret)

    def parse(self, callback: Callback) -> list[Report]:
        """The reports in a verified callback (ValueError when it is malformed)."""
        raise NotImplementedError

    # -- HTTP --------------------------------------------------------------------------------

    async def call(self, request: Request) -> Answer:
        """Make one request; transport failures become :class:`ConnectorError`."""
        session = self._session
        if session is None or session.closed:
            raise ConnectorError(f"{self.name}: not started", temporary=True,
                                 error_code=ErrorCode.CONNECTOR_UNAVAILABLE)  # fmt: skip
        url = self._base + request.path
        self.in_flight += 1
        try:
            async with session.request(
                request.method,
                url,
                data=dict(request.form) if request.form is not None else None,
                json=request.json,
                params=dict(request.params) if request.params is not None else None,
                headers=dict(request.headers),
            ) as response:
                body = await response.read()
                return Answer(response.status, dict(response.headers), body)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            self.counters["errors"] += 1
            raise ConnectorError(f"{self.name}: cannot connect: {exc}", temporary=True,
                                 error_code=ErrorCode.CONNECTOR_UNAVAILABLE) from exc  # fmt: skip
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.counters["errors"] += 1
            what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc!r}"
            raise ConnectorError(f"{self.name}: request {what}", temporary=True, maybe_sent=True,
                                 error_code=ErrorCode.CONNECTOR_UNAVAILABLE) from exc  # fmt: skip
        finally:
            self.in_flight -= 1

    async def _poll_balance(self) -> None:
        request = self.balance_request()
        assert request is not None
        while True:
            try:
                answer = await self.call(request)
                if answer.status < 300:
                    self._balance(self.read_balance(answer))
                else:
                    log.warning("balance poll refused", connector=self.name, status=answer.status)
            except (ConnectorError, ValueError, TypeError, KeyError) as exc:
                log.warning("balance poll failed", connector=self.name, error=str(exc))
            await asyncio.sleep(self.settings.balance_interval)

    def _balance(self, value: float | None) -> None:
        self.balance = value
        low = value is not None and value < self.settings.low_balance
        if low and not self.low_balance:
            log.warning("provider balance low", connector=self.name, balance=value,
                        threshold=self.settings.low_balance)  # fmt: skip
        self.low_balance = low


def _retry_after(headers: Mapping[str, str]) -> float:
    """Seconds from a ``Retry-After`` header (delta form), capped at 60; 0 when absent."""
    try:
        return min(60.0, max(0.0, float(headers.get("Retry-After", "0"))))
    except ValueError:
        return 0.0


def error_for(
    detail: str, table: Mapping[Any, tuple[bool, str]], code: Any, default: tuple[bool, str]
) -> ConnectorError:
    """A :class:`ConnectorError` from a provider's error table: code -> (temporary, our code)."""
    temporary, ours = table.get(code, default)
    return ConnectorError(detail, temporary=temporary, error_code=ours)
