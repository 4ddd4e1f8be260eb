"""The delivery side of the gateway, built from settings: connectors, router, dispatcher.

:class:`DeliveryPlan` is what the config says (connectors, router, simulated carrier), built
once per process when ``dakghar serve`` checks the config; :meth:`Pipeline.start` runs it over
an open store, for the composition root (``dakghar.gateway``). It starts, in order:

- the simulated carrier (an SMPP server on loopback, on a free port unless ``[simulator] port``
  says otherwise) and an SMPP connector named ``simulator`` bound to it. Sandbox (``test_``) keys
  route there and only there, so sandbox traffic crosses a real SMPP session, as live traffic does;
- the connectors of ``[[connectors]]`` (live carriers and providers);
- the router of ``[[routes]]``, checked against the connectors' names;
- the dispatcher, fed by the acceptor (new messages wake it at once) and the queue on start-up;
- the webhook sender, woken whenever the dispatcher moves a message.

``SIGHUP`` re-reads the routes from the config file without a restart (``dakghar routes`` edits it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec

from dakghar.compliance.optout import handle_inbound
from dakghar.connectors.base import Connector
from dakghar.connectors.http.factory import HTTP_TYPES, build_http_connector
from dakghar.connectors.smpp import InboundHandler, SmppConnector, SmppConnectorConfig
from dakghar.observability.logging import get_logger
from dakghar.observability.metrics import Metrics
from dakghar.pipeline.accept import Acceptor
from dakghar.pipeline.dispatcher import Dispatcher
from dakghar.pipeline.retry import RetryPolicy
from dakghar.pipeline.routing import SANDBOX_CONNECTOR, Router, checked_router
from dakghar.pipeline.switches import Switchboard
from dakghar.pipeline.view import DeliveryView, LocalDelivery
from dakghar.settings import STATE_FILE, Settings, SettingsError, load_settings
from dakghar.smpp.simulator import Simulator, SimulatorConfig
from dakghar.store import is_embedded
from dakghar.store.base import MessageRow, Store
from dakghar.webhooks.sender import WebhookSender

log = get_logger("dakghar.delivery")

# The in-process simulator's own bind: loopback only, credentials that never leave the process.
SIMULATOR_SYSTEM_ID = "dakghar"


def build_connectors(
    tables: Sequence[dict[str, Any]], on_inbound: InboundHandler | None = None
) -> dict[str, Connector]:
    """The live connectors of ``[[connectors]]``; errors name the offending table.

    ``on_inbound`` receives mobile-originated messages (SMPP), e.g. STOP replies for opt-outs.
    """
    connectors: dict[str, Connector] = {}
    for i, table in enumerate(tables):
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise SettingsError(f"connectors[{i}]: every connector needs a name")
        if name == SANDBOX_CONNECTOR:
            raise SettingsError(f"connectors[{i}]: the name {name!r} is reserved for sandbox")
        if name in connectors:
            raise SettingsError(f"connectors[{i}]: a second connector named {name!r}")
        kind = table.get("type", "smpp")
        if kind != "smpp" and kind not in HTTP_TYPES:
            known = ", ".join(["smpp", *sorted(HTTP_TYPES)])
            raise SettingsError(f"connectors[{i}] ({name}): unknown type {kind!r}; known: {known}")
        try:
            if kind == "smpp":
                config = SmppConnectorConfig.from_settings(table)
                connectors[name] = SmppConnector(name, config, on_inbound=on_inbound)
            else:
                connectors[name] = build_http_connector(name, table)
        except ValueError as exc:
            raise SettingsError(f"connectors[{i}] ({name}): {exc}") from exc
    return connectors


def build_router(routes: list[dict[str, Any]], live: Sequence[str]) -> Router | None:
    """The router of ``[[routes]]`` (None when there are none), checked against the live
    connector names ``live`` by ``routing.checked_router``, as reload and the CLI do."""
    try:
        return checked_router(routes, live)
    except ValueError as exc:
        raise SettingsError(f"routes: {exc}") from exc


def simulator_config(table: dict[str, Any]) -> tuple[bool, SimulatorConfig]:
    """Whether the in-process simulator runs, and its configuration (free port by default)."""
    table = dict(table)
    enabled = bool(table.pop("enabled", True))
    table.setdefault("port", 0)
    table.setdefault("system_id", SIMULATOR_SYSTEM_ID)
    # A fresh password each start (8 characters, SMPP 3.4's most): only this process's own
    # sandbox connector knows it, so nothing else that reaches the port can bind as it.
    table.setdefault("password", secrets.token_urlsafe(6)[:8])
    try:
        return enabled, SimulatorConfig.from_settings(table)
    except ValueError as exc:
        raise SettingsError(f"simulator: {exc}") from exc


async def write_state_forever(
    path: Path, state: Callable[[], dict[str, Any]], interval: float = 1.0
) -> None:
    """Keep a JSON snapshot of connector and breaker state where ``dakghar status`` reads it."""
    from dakghar.pipeline.process import write_forever

    await write_forever(path, lambda: msgspec.json.encode({"at": time.time(), **state()}), interval)


@dataclass
class DeliveryPlan:
    """What the config says the delivery side is, built (and so checked) once per process.

    Building opens no connection, so ``dakghar serve`` builds the plan before any socket, store
    or banner, and the same objects then run: a bad table is one line at start-up.
    """

    connectors: dict[str, Connector]  # the live ones of ``[[connectors]]``
    router: Router | None
    simulator_enabled: bool
    simulator: SimulatorConfig

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPlan:
        """The plan of ``settings``; :class:`SettingsError` names the offending table."""
        connectors = build_connectors(settings.connectors)
        router = build_router(settings.routes, list(connectors))
        enabled, sim = simulator_config(settings.simulator)
        return cls(connectors, router, enabled, sim)

    @property
    def names(self) -> set[str]:
        """Every connector's name, the simulated carrier's included when it runs."""
        return set(self.connectors) | ({SANDBOX_CONNECTOR} if self.simulator_enabled else set())


def sandbox_connector(host: str, port: int, config: SimulatorConfig) -> SmppConnector:
    """The SMPP connector bound to the in-process simulated carrier at ``host:port``."""
    return SmppConnector(
        SANDBOX_CONNECTOR,
        SmppConnectorConfig.from_settings(
            {
                "name": SANDBOX_CONNECTOR,
                "host": host,
                "port": port,
                "system_id": config.system_id or SIMULATOR_SYSTEM_ID,
                "password": config.password or "",
                "binds": 1,
                # 128 in flight keeps a sandbox OTP's accept->submit p99 near 125 ms
                # behind a 100k backlog (512: ~270 ms) at the same throughput.
                "window": 128,
                "rate": 0,
            }
        ),
    )


class Pipeline(LocalDelivery):
    """The delivery side running in this process: simulated carrier, connectors, router,
    dispatcher and webhook sender, and the state snapshot ``dakghar status`` reads.

    Also the API's view of it (:class:`LocalDelivery`). Built by :meth:`start`, which the
    composition root calls; :meth:`stop` undoes it in reverse.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        webhooks: WebhookSender,
        simulator: Simulator | None,
        acceptor: Acceptor,
    ) -> None:
        super().__init__(dispatcher)
        self.webhooks = webhooks
        self.simulator = simulator
        self._acceptor = acceptor
        self._snapshots: asyncio.Task[None] | None = None
        self._hup: asyncio.AbstractEventLoop | None = None  # the loop SIGHUP is handled on

    @classmethod
    async def start(
        cls,
        settings: Settings,
        store: Store,
        *,
        switches: Switchboard,
        acceptor: Acceptor,
        metrics: Metrics | None = None,
        plan: DeliveryPlan | None = None,
        reload_on_hup: bool = False,
        config_path: str | None = None,
        scan_interval: float = 2.0,
        fleet_pacer: Any = None,
    ) -> Pipeline:
        """Start the delivery side of ``plan`` (by default, of ``settings``) over ``store``.

        ``scan_interval``: how often the dispatcher looks for messages nobody told it about
        (queued by another process); the delivery process of ``dakghar serve`` looks every
        second. ``reload_on_hup``: SIGHUP re-reads the routes from ``config_path``.
        """
        plan = plan or DeliveryPlan.from_settings(settings)

        async def inbound(from_number: str, to: str, text: str) -> None:
            await handle_inbound(store, from_number, to, text)

        connectors = dict(plan.connectors)
        for connector in connectors.values():
            if isinstance(connector, SmppConnector) and connector.on_inbound is None:
                connector.on_inbound = inbound  # STOP replies become opt-outs
            if isinstance(connector, SmppConnector) and fleet_pacer is not None:
                connector.leases = fleet_pacer  # its binds are the fleet's: leased per slot
        live = list(connectors)  # before the simulator joins: routes may only name these
        simulator: Simulator | None = None
        if plan.simulator_enabled:
            simulator = Simulator(plan.simulator)
            host, port = await simulator.start()
            connectors[SANDBOX_CONNECTOR] = sandbox_connector(host, port, plan.simulator)
        webhooks = WebhookSender.from_settings(store, settings)

        def changed(rows: Sequence[MessageRow | None]) -> None:
            webhooks.wake()
            if metrics is not None:
                metrics.on_changed(rows)

        dispatcher = Dispatcher(
            store,
            connectors,
            router=plan.router,
            switches=switches,
            policy=RetryPolicy(),
            on_change=changed,
            scan_interval=scan_interval,
            # The embedded store's dispatcher lock makes this the only dispatcher; on a fleet's
            # store it is one of many (claims of dead ones only are rescued).
            exclusive=is_embedded(settings.database_url),
            fleet_pacer=fleet_pacer,  # the fleet's shared pacing of each connector (Redis)
        )
        await webhooks.start()
        try:
            await dispatcher.start()
        except BaseException:  # a failed start leaves no session or listener behind
            await webhooks.stop()
            if simulator is not None:
                await simulator.stop()
            raise
        pipeline = cls(dispatcher, webhooks, simulator, acceptor)
        acceptor.listeners.append(dispatcher.notify)
        if metrics is not None:
            metrics.state.sources.append(dispatcher.state)
        log.info(
            "delivery started",
            connectors=sorted(connectors),
            simulator=simulator.address if simulator else None,
            routes=len(settings.routes),
        )
        pipeline._snapshots = asyncio.create_task(
            write_state_forever(Path(settings.data_dir) / STATE_FILE, pipeline.snapshot(store)),
            name="dakghar-state",
        )
        if reload_on_hup:
            pipeline._reload_on_hup(config_path, live)
        return pipeline

    def snapshot(self, store: Store) -> Callable[[], dict[str, Any]]:
        """What the state file holds: this process, readiness, dispatcher and store state."""
        pid, dispatcher = os.getpid(), self.dispatcher

        def snap() -> dict[str, Any]:
            return {
                "pid": pid,
                "ready": dispatcher.ready,
                **dispatcher.state(),
                "store_writes": store.write_stats(),
            }

        return snap

    def _reload_on_hup(self, config_path: str | None, live: list[str]) -> None:
        dispatcher = self.dispatcher

        def reload_routes() -> None:
            try:
                fresh = load_settings(config_path)
                dispatcher.router = build_router(fresh.routes, live)
            except SettingsError as exc:
                log.error("routes not reloaded", error=str(exc))
            else:
                log.info("routes reloaded", routes=len(fresh.routes))

        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, reload_routes)
            self._hup = loop

    async def stop(self) -> None:
        """Stop what :meth:`start` started, in reverse."""
        if self._snapshots is not None:
            self._snapshots.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshots
        if self._hup is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._hup.remove_signal_handler(signal.SIGHUP)
        if self.dispatcher.notify in self._acceptor.listeners:
            self._acceptor.listeners.remove(self.dispatcher.notify)
        await self.dispatcher.stop()
        if self.simulator is not None:
            await self.simulator.stop()
        await self.webhooks.stop()


class DeliveryHost(Protocol):
    """What :func:`delivery_component` needs of the parts it joins (the API's services)."""

    @property
    def store(self) -> Store: ...
    @property
    def switches(self) -> Switchboard: ...
    @property
    def acceptor(self) -> Acceptor: ...
    @property
    def metrics(self) -> Metrics | None: ...
    @property
    def readiness(self) -> dict[str, Any]: ...

    delivery: DeliveryView | None


def delivery_component(
    settings: Settings,
    *,
    reload_on_hup: bool = False,
    config_path: str | None = None,
    scan_interval: float = 2.0,
) -> Callable[[DeliveryHost], Awaitable[Callable[[], Awaitable[None]]]]:
    """A start-up part (``api.app.Component``) that runs :class:`Pipeline` in the app's process;
    ``create_app(settings, delivery="inline")`` does the same through the composition root."""

    async def start(host: DeliveryHost) -> Callable[[], Awaitable[None]]:
        pipeline = await Pipeline.start(
            settings,
            host.store,
            switches=host.switches,
            acceptor=host.acceptor,
            metrics=host.metrics,
            reload_on_hup=reload_on_hup,
            config_path=config_path,
            scan_interval=scan_interval,
        )
        host.delivery = pipeline
        host.readiness["connectors"] = lambda: pipeline.ready
        return pipeline.stop

    return start
