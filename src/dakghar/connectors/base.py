"""The connector interface: how the dispatcher hands a message to a carrier or provider.

A connector takes one :class:`Outbound` message at a time and answers :class:`Accepted` (the
carrier's id for each part) or raises :class:`ConnectorError`, which says whether trying again
can help (temporary) and whether the carrier may already have it (``maybe_sent``, e.g. a timeout
after the request left). Delivery reports come back through the ``on_report`` callback given at
start; the connector acknowledges a report to the carrier only after that callback returns, so
the dispatcher can write it durably first. SMPP, HTTP providers and the simulator all fit here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message as a connector needs it."""

    message_id: str
    to: str  # E.164
    sender: str | None
    body: str
    encoding: str  # "GSM-7" | "UCS-2"
    type: str
    validity_seconds: int
    template_id: str | None = None
    entity_id: str | None = None
    want_report: bool = True


@dataclass(frozen=True, slots=True)
class Accepted:
    """The carrier took the message: its id for every part, in order."""

    provider_ids: list[str]
    # How many SMS the message went out as, when the connector split it itself (SMPP); None
    # when the provider splits (HTTP APIs). More than the segments billed at accept means the
    # connector's header is larger (16-bit UDH), and the difference is billed at send.
    parts: int | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """A delivery report for one part."""

    connector: str
    provider_id: str
    status: str  # delivered | undelivered | expired | rejected | failed
    error_code: str | None = None
    detail: str | None = None
    at: int | None = None  # ms since the epoch, when the carrier says it happened


class ConnectorError(Exception):
    """A submit that did not succeed."""

    def __init__(
        self,
        detail: str,
        *,
        temporary: bool,
        error_code: str,
        maybe_sent: bool = False,
        slow_down: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.temporary = temporary
        self.error_code = error_code
        self.maybe_sent = maybe_sent
        self.slow_down = slow_down  # the carrier asked us to send more slowly (throttled)


ReportSink = Callable[[Report], Awaitable[None]]


class Connector(Protocol):
    """What the dispatcher needs from a connector."""

    name: str
    rate_per_second: float
    max_in_flight: int

    async def start(self, on_report: ReportSink) -> None:
        """Connect (and keep reconnecting); reports go to ``on_report``."""

    async def stop(self) -> None:
        """Stop taking messages, drain what is in flight, disconnect."""

    async def submit(self, message: Outbound) -> Accepted:
        """Hand one message over; raises :class:`ConnectorError`."""

    @property
    def ready(self) -> bool:
        """True while the connector can take messages (e.g. at least one bind is up)."""

    def state(self) -> dict[str, Any]:
        """A snapshot for metrics, ``/readyz`` and the CLI."""
