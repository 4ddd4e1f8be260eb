"""Alerts: rules from ``[[alerts]]``, evaluated every few seconds, fired and resolved loudly.

The guide asks for alerts on "sudden drops in delivery rate, API errors spiking, or credit
balance running low". Each rule has a ``name``, a ``kind`` and its thresholds:

==================  ==========================================================================
kind                fires when
==================  ==========================================================================
``delivery_rate``   delivered / settled over the last ``minutes`` (default 15) is ``below``
                    (0-1), optionally for one ``carrier``, once ``min_messages`` settled
``api_errors``      more than ``above`` API answers with status 5xx in the last ``minutes``
``api_latency``     the API's p99 over the last ``minutes`` is above ``above_ms``
``connector_down``  a ``connector`` (or any) cannot take traffic (not bound, breaker open)
``queue_age``       the oldest queued message of a ``lane`` (or any) waits over ``above_seconds``
``credits_low``     an ``account``'s (or any live account's) balance is ``below`` credits
==================  ==========================================================================

Transitions go to the log and, when the rule (or the ``[[alerts]]`` entry named ``*``) has a
``webhook``, to that URL as a signed POST (``Dakghar-Signature`` like message webhooks, with
the secret from the environment variable ``secret_env``). ``dakghar_alerts_firing`` on
/metrics is 1 per firing rule; ``deploy/prometheus/alerts.yml`` holds the same rules for teams
that alert from Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import msgspec

from dakghar.core.message import LANES
from dakghar.core.times import iso
from dakghar.observability.logging import get_logger
from dakghar.observability.metrics import Metrics
from dakghar.settings import Settings, SettingsError
from dakghar.store.base import Store, now_ms
from dakghar.webhooks.signing import sign


class DeliveryState(Protocol):
    """The delivery side as alerts see it (``pipeline.view.DeliveryView`` is one)."""

    def state(self) -> dict[str, Any]:
        """Dispatcher, connector and breaker state."""


log = get_logger("dakghar.alerts")
KINDS = {
    "delivery_rate": {"below", "minutes", "carrier", "min_messages"},
    "api_errors": {"above", "minutes"},
    "api_latency": {"above_ms", "minutes"},
    "connector_down": {"connector"},
    "queue_age": {"above_seconds", "lane"},
    "credits_low": {"below", "account"},
}
COMMON = {"name", "kind", "webhook", "secret_env"}
_LANES = {lane.label: int(lane) for lane in LANES}


@dataclass
class Rule:
    name: str
    kind: str
    params: dict[str, Any]
    webhook: str | None = None
    secret_env: str | None = None


@dataclass
class AlertState:
    firing: bool = False
    since: float | None = None
    value: float | None = None
    detail: str = ""


@dataclass
class Evaluation:
    firing: bool
    value: float | None
    detail: str


def parse_rules(tables: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """``[[alerts]]`` tables as rules; clear errors for unknown kinds and keys."""
    rules = []
    for i, t in enumerate(tables):
        kind = t.get("kind")
        if kind not in KINDS:
            raise SettingsError(f"alerts[{i}]: kind must be one of {sorted(KINDS)}")
        unknown = set(t) - COMMON - KINDS[kind]
        if unknown:
            raise SettingsError(f"alerts[{i}] ({kind}): unknown keys {sorted(unknown)}")
        params = {k: v for k, v in t.items() if k not in COMMON}
        name = str(t.get("name") or f"{kind}#{i + 1}")
        rules.append(Rule(name, kind, params, t.get("webhook"), t.get("secret_env")))
    return rules


def _window_delta(
    history: deque[tuple[float, dict[str, float]]], now: float, minutes: float
) -> dict[str, float]:
    """Counter increase over the window, from snapshots taken at each evaluation."""
    if not history:
        return {}
    start = history[0][1]
    for at, snap in history:
        if at >= now - minutes * 60:
            break
        start = snap
    latest = history[-1][1]
    return {k: v - start.get(k, 0.0) for k, v in latest.items()}


class AlertEvaluator:
    """Evaluates rules on a timer and reports transitions.

    Reads the store, the API's ``metrics`` (HTTP counters) and, through ``delivery``, the
    delivery side as the API sees it (which may start after the evaluator is built).
    """

    def __init__(
        self,
        rules: list[Rule],
        store: Store,
        *,
        metrics: Metrics | None = None,
        delivery: Callable[[], DeliveryState | None] = lambda: None,
        interval: float = 5.0,
    ) -> None:
        self.rules = rules
        self.store = store
        self.metrics = metrics
        self.delivery = delivery
        self.interval = interval
        self.states = {r.name: AlertState() for r in rules}
        self.recent: deque[dict[str, Any]] = deque(maxlen=100)
        self._history: deque[tuple[float, dict[str, float]]] = deque(maxlen=2000)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._task = asyncio.create_task(self._run(), name="dakghar-alerts")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session:
            await self._session.close()

    def firing(self) -> dict[str, float]:
        return {name: 1.0 if s.firing else 0.0 for name, s in self.states.items()}

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.evaluate()
            await asyncio.sleep(self.interval)

    async def evaluate(self) -> None:
        """One round: evaluate every rule, report the ones that changed."""
        now = time.time()
        self._history.append((now, self._http_counters()))
        for rule in self.rules:
            result = await self._evaluate(rule, now)
            state = self.states[rule.name]
            state.value, state.detail = result.value, result.detail
            if result.firing != state.firing:
                state.firing = result.firing
                state.since = now
                await self._notify(rule, state)

    async def _evaluate(self, rule: Rule, now: float) -> Evaluation:
        p = rule.params
        if rule.kind == "delivery_rate":
            minutes = float(p.get("minutes", 15))
            end = now_ms()
            rows = await self.store.delivery_stats(
                None, "carrier", end - int(minutes * 60_000), end + 1
            )
            if "carrier" in p:
                rows = [r for r in rows if r.key == p["carrier"]]
            delivered = sum(r.delivered for r in rows)
            settled = delivered + sum(r.failed for r in rows)
            if settled < int(p.get("min_messages", 20)):
                return Evaluation(False, None, f"{settled} settled: too few to judge")
            rate = delivered / settled
            return Evaluation(rate < float(p["below"]), rate,
                              f"delivery rate {rate:.1%} over {minutes:g} min")  # fmt: skip
        if rule.kind == "api_errors":
            minutes = float(p.get("minutes", 5))
            delta = _window_delta(self._history, now, minutes)
            errors = sum(v for k, v in delta.items() if k.startswith("status:5"))
            return Evaluation(errors > float(p["above"]), errors,
                              f"{errors:g} API 5xx answers in {minutes:g} min")  # fmt: skip
        if rule.kind == "api_latency":
            minutes = float(p.get("minutes", 5))
            p99 = _p99(_window_delta(self._history, now, minutes))
            if p99 is None:
                return Evaluation(False, None, "no API requests in the window")
            return Evaluation(p99 * 1000 > float(p["above_ms"]), p99 * 1000,
                              f"API p99 {p99 * 1000:.0f} ms")  # fmt: skip
        if rule.kind == "connector_down":
            delivery = self.delivery()
            connectors = delivery.state()["connectors"] if delivery else {}
            down = [
                name
                for name, c in connectors.items()
                if p.get("connector") in (None, name)
                and (not c.get("ready") or c.get("breaker", {}).get("state") == "open")
            ]
            return Evaluation(bool(down), float(len(down)), f"down: {', '.join(down) or 'none'}")
        if rule.kind == "queue_age":
            queue = await self.store.queue_stats()
            ages = queue.get("oldest_queued_seconds", {})
            lane = _LANES.get(str(p.get("lane")))
            oldest = max((a for k, a in ages.items() if lane in (None, int(k))), default=0.0)
            return Evaluation(oldest > float(p["above_seconds"]), oldest,
                              f"oldest queued message waits {oldest:.0f} s")  # fmt: skip
        # credits_low
        below = int(float(p["below"]) * 1000)
        account = p.get("account")
        low = [a for a in await self.store.accounts_below(below) if account in (None, a.id, a.name)]
        names = ", ".join(a.name for a in low[:5])
        return Evaluation(bool(low), float(len(low)), f"low balance: {names or 'none'}")

    def _http_counters(self) -> dict[str, float]:
        metrics = self.metrics
        out: dict[str, float] = {}
        if metrics is None:
            return out
        for family in metrics.families():
            if family.name == "dakghar_http_requests":
                for s in family.samples:
                    if s.name.endswith("_total"):
                        key = f"status:{s.labels['status']}"
                        out[key] = out.get(key, 0.0) + s.value
            elif family.name == "dakghar_http_request_duration_seconds":
                for s in family.samples:
                    if s.name.endswith("_bucket"):
                        key = f"le:{s.labels['le']}"
                        out[key] = out.get(key, 0.0) + s.value
        return out

    async def _notify(self, rule: Rule, state: AlertState) -> None:
        event = {
            "type": "alert.firing" if state.firing else "alert.resolved",
            "alert": rule.name,
            "kind": rule.kind,
            "value": state.value,
            "detail": state.detail,
            "at": iso(now_ms()),  # RFC 3339, like every other time the gateway writes
        }
        self.recent.append(event)
        (log.warning if state.firing else log.info)(
            event["type"], alert=rule.name, detail=state.detail
        )
        if not rule.webhook or self._session is None:
            return
        body = msgspec.json.encode(event)
        headers = {"Content-Type": "application/json"}
        secret = os.environ.get(rule.secret_env or "", "")
        if secret:
            headers["Dakghar-Signature"] = sign(secret, body, int(time.time()))
        try:
            async with self._session.post(rule.webhook, data=body, headers=headers) as r:
                if r.status >= 300:
                    log.warning("alert webhook refused", alert=rule.name, status=r.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("alert webhook failed", alert=rule.name, error=str(exc))


def _p99(delta: dict[str, float]) -> float | None:
    buckets = sorted(
        (float(k[3:]), v) for k, v in delta.items() if k.startswith("le:")
    )  # cumulative counts per upper bound
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= total * 0.99:
            return bound
    return buckets[-1][0]


class AlertsHost(Protocol):
    """What :func:`alerts_component` needs of the parts it joins (the API's services)."""

    @property
    def store(self) -> Store: ...
    @property
    def metrics(self) -> Metrics | None: ...
    @property
    def delivery(self) -> DeliveryState | None: ...

    alerts: AlertEvaluator | None


async def start_alerts(
    rules: list[Rule], host: AlertsHost, interval: float = 5.0
) -> AlertEvaluator:
    """Start evaluating ``rules`` over ``host``'s parts; it becomes ``host.alerts`` and feeds
    ``dakghar_alerts_firing``."""
    evaluator = AlertEvaluator(
        rules, host.store, metrics=host.metrics, delivery=lambda: host.delivery, interval=interval
    )
    host.alerts = evaluator
    if host.metrics is not None:
        host.metrics.state.alerts = evaluator.firing
    await evaluator.start()
    return evaluator


def alerts_component(
    settings: Settings, interval: float = 5.0
) -> Callable[[AlertsHost], Awaitable[Callable[[], Awaitable[None]]]]:
    """A start-up part (``api.app.Component``) that evaluates ``[[alerts]]`` in the gateway;
    ``create_app(settings, alerts=True)`` does the same through the composition root."""
    rules = parse_rules(settings.alerts)

    async def start(host: AlertsHost) -> Callable[[], Awaitable[None]]:
        return (await start_alerts(rules, host, interval)).stop

    return start
