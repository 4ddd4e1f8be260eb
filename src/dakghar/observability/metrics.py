"""Prometheus metrics: what the gateway did (counters, histograms) and what it holds (gauges).

Every app gets its own ``CollectorRegistry`` (tests build many apps in one process). Label sets
are bounded by design: routes are endpoint names, never paths with ids; messages are labelled by
status, type, connector, carrier and telecom region (a few dozen values), never by number, id or
account. Gauges that need the store (queue depth, oldest queued age, webhook backlog) are read by
a background refresher every few seconds, so a scrape never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakghar.core.message import LANES
from dakghar.store.base import MessageRow, Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LANES = {int(lane): lane.label for lane in LANES}
_BREAKER = {"closed": 0, "half_open": 1, "open": 2}
_EVENT_KEYS = ("submitted", "responses", "timeouts", "throttled", "reconnects", "errors", "refused")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)


class _Children:
    """``metric.labels(*values)``, looked up once per label set: prometheus_client checks the
    values and takes a lock on every call, and each message passes here four to six times.
    Label sets are bounded (see the module's notes) and never removed, so nothing goes stale."""

    __slots__ = ("_labels", "_seen")

    def __init__(self, metric: Counter | Histogram) -> None:
        self._labels = metric.labels
        self._seen: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._seen.get(values)
        if child is None:
            child = self._seen[values] = self._labels(*values)
        return child


class Metrics:
    """The gateway's metrics, with hooks for the API, the acceptor and the dispatcher."""

    def __init__(self) -> None:
        # Exposition text of the gateway's other processes (the delivery process), merged in.
        self.peers: list[Callable[[], str | None]] = []
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "dakghar_http_requests", "API requests", ["route", "method", "status"], registry=r
        )
        self.http_latency = Histogram(
            "dakghar_http_request_duration_seconds",
            "API request latency",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.accepted = Counter(
            "dakghar_messages_accepted", "Messages accepted", ["type", "mode"], registry=r
        )
        self.segments = Counter(
            "dakghar_segments_accepted", "Segments accepted", ["type", "mode"], registry=r
        )
        self.statuses = Counter(
            "dakghar_message_status_changes",
            "Messages reaching a status after acceptance",
            ["status", "type", "connector", "carrier", "region"],
            registry=r,
        )
        self.accept_to_submit = Histogram(
            "dakghar_accept_to_submit_seconds",
            "From acceptance to the carrier taking the message",
            ["type"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.submit_to_delivered = Histogram(
            "dakghar_submit_to_delivered_seconds",
            "From the carrier taking the message to its delivery report",
            ["connector"],
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.state = _StateCollector()
        r.register(self.state)
        self._requests, self._latency = _Children(self.http_requests), _Children(self.http_latency)
        self._accepted, self._segments = _Children(self.accepted), _Children(self.segments)
        self._statuses = _Children(self.statuses)
        self._to_submit = _Children(self.accept_to_submit)
        self._to_delivered = _Children(self.submit_to_delivered)

    # -- hooks -------------------------------------------------------------------------------

    def on_accepted(self, rows: Sequence[MessageRow]) -> None:
        """An acceptor listener."""
        for row in rows:
            mode = "test" if row.sandbox else "live"
            self._accepted(row.type, mode).inc()
            self._segments(row.type, mode).inc(row.segments)

    def on_changed(self, rows: Sequence[MessageRow | None]) -> None:
        """A dispatcher change hook: rows as they are after a status change."""
        for row in rows:
            if row is None:
                continue
            self._statuses(
                row.status, row.type, row.connector or "", row.carrier or "", row.region or ""
            ).inc()
            if row.status == "sent" and row.submitted_at is not None:
                self._to_submit(row.type).observe(
                    max(0.0, (row.submitted_at - row.created_at) / 1000)
                )
            elif row.status == "delivered" and row.delivered_at and row.submitted_at:
                self._to_delivered(row.connector or "").observe(
                    max(0.0, (row.delivered_at - row.submitted_at) / 1000)
                )

    def count_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """An API request answered with ``status`` after ``seconds``."""
        self._requests(route, method, str(status)).inc()
        self._latency(route, method).observe(seconds)

    def families(self) -> list[Metric]:
        """This process's metrics, with those of ``peers`` (other processes of the same
        gateway, as exposition text) added in: counters and histograms summed per label set."""
        own = list(self.registry.collect())
        for peer in self.peers:
            text = peer()
            if text:
                own = merge_families(own, text_string_to_metric_families(text))
        return own

    def render(self) -> bytes:
        """The text exposition format."""
        if not self.peers:
            return generate_latest(self.registry)
        return generate_latest(_Fixed(self.families()))


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def merge_families(own: list[Metric], other: Iterable[Metric]) -> list[Metric]:
    """``own`` with the samples of ``other`` added: equal (name, labels) summed, new ones
    appended; ``_created`` timestamps are kept from ``own``."""
    by_name = {f.name: f for f in own}
    out = list(own)
    for family in other:
        mine = by_name.get(family.name)
        if mine is None:
            out.append(family)
            continue
        index = {(s.name, tuple(sorted(s.labels.items()))): i for i, s in enumerate(mine.samples)}
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            i = index.get(key)
            if i is None:
                index[key] = len(mine.samples)
                mine.samples.append(s)
            elif not s.name.endswith("_created"):
                mine.samples[i] = mine.samples[i]._replace(value=mine.samples[i].value + s.value)
    return out


class _StateCollector(Collector):
    """Gauges read at scrape time from live objects and the refreshed store snapshot."""

    def __init__(self) -> None:
        self.queue: dict[str, Any] = {}
        self.sources: list[Callable[[], dict[str, Any]]] = []  # dispatcher.state and the like
        self.otp: Callable[[], dict[str, Any]] | None = None  # OtpService.stats
        self.alerts: Callable[[], dict[str, float]] | None = None  # AlertEvaluator.firing

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "dakghar_queue_messages",
            "Messages waiting, by status and lane",
            labels=["status", "lane"],
        )
        for key, n in self.queue.get("counts", {}).items():
            status, lane = key.split(":")
            depth.add_metric([status, _LANES.get(int(lane), lane)], n)
        yield depth
        age = GaugeMetricFamily(
            "dakghar_queue_oldest_seconds", "Age of the oldest queued message", labels=["lane"]
        )
        for lane, seconds in self.queue.get("oldest_queued_seconds", {}).items():
            age.add_metric([_LANES.get(int(lane), str(lane))], max(0.0, seconds))
        yield age
        yield GaugeMetricFamily(
            "dakghar_webhooks_pending",
            "Webhook events not yet delivered",
            value=self.queue.get("webhooks_pending", 0),
        )
        for source in self.sources:
            yield from _dispatcher_metrics(source())
        if self.otp is not None:
            yield from _otp_metrics(self.otp())
        if self.alerts is not None:
            firing = GaugeMetricFamily(
                "dakghar_alerts_firing", "1 while an [[alerts]] rule fires", labels=["alert"]
            )
            for name, value in self.alerts().items():
                firing.add_metric([name], value)
            yield firing


def _otp_metrics(stats: dict[str, Any]) -> Iterable[Metric]:
    funnel = CounterMetricFamily(
        "dakghar_otp", "OTP verifications by outcome (conversion funnel)", labels=["outcome"]
    )
    for outcome in ("sent", "resent", "approved", "expired", "failed", "wrong_codes"):
        funnel.add_metric([outcome], float(stats.get(outcome, 0)))
    yield funnel
    blocked = CounterMetricFamily(
        "dakghar_otp_blocked",
        "OTP sends refused by abuse protection (prefix = SMS pumping)",
        labels=["reason"],
    )
    for reason, n in stats.get("blocked", {}).items():
        blocked.add_metric([reason], float(n))
    yield blocked
    tta = stats.get("time_to_approve_seconds", {})
    hist = HistogramMetricFamily("dakghar_otp_time_to_approve_seconds", "From send to approval")
    hist.add_metric([], list(tta.get("buckets", {}).items()), sum_value=tta.get("sum", 0.0))
    yield hist


def _dispatcher_metrics(state: dict[str, Any]) -> Iterable[Metric]:
    ready = GaugeMetricFamily("dakghar_connector_up", "1 while bound", labels=["connector"])
    breaker = GaugeMetricFamily(
        "dakghar_connector_breaker",
        "Circuit breaker: 0 closed, 1 half open, 2 open",
        labels=["connector"],
    )
    window = GaugeMetricFamily(
        "dakghar_connector_in_flight", "Requests awaiting the carrier", labels=["connector"]
    )
    events = CounterMetricFamily(
        "dakghar_connector_events",
        "Per-connector SMPP counters summed over binds (rate() gives PDUs/s)",
        labels=["connector", "event"],
    )
    balance = GaugeMetricFamily(
        "dakghar_connector_balance",
        "Provider account balance, where the provider reports one",
        labels=["connector"],
    )
    for name, c in state.get("connectors", {}).items():
        totals: dict[str, float] = {}
        # SMPP connectors count per bind; HTTP providers keep their counters at the top level.
        for source in [*c.get("binds", []), c]:
            for key in _EVENT_KEYS:
                if isinstance(source.get(key), int | float):
                    totals[key] = totals.get(key, 0.0) + float(source[key])
        if isinstance(c.get("balance"), int | float):
            balance.add_metric([name], float(c["balance"]))
        for key, value in totals.items():
            events.add_metric([name, key], value)
        ready.add_metric([name], 1.0 if c.get("ready") else 0.0)
        breaker.add_metric([name], _BREAKER.get(c.get("breaker", {}).get("state"), 0))
        window.add_metric([name], float(c.get("window_in_use", c.get("in_flight", 0)) or 0))
    yield ready
    yield breaker
    yield window
    yield events
    yield balance
    yield GaugeMetricFamily(
        "dakghar_dispatcher_in_flight", "Messages being sent", value=state.get("in_flight", 0)
    )


async def refresh_forever(metrics: Metrics, store: Store, interval: float = 5.0) -> None:
    """Keep the store-backed gauges fresh (a background task)."""
    while True:
        with contextlib.suppress(Exception):
            metrics.state.queue = await store.queue_stats()
        await asyncio.sleep(interval)


class MetricsMiddleware:
    """Counts and times every request by endpoint name (bounded), method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            endpoint = scope.get("endpoint")
            route = getattr(endpoint, "__name__", "unmatched")
            method = scope["method"]
            self.metrics.count_request(route, method, status, time.perf_counter() - start)
