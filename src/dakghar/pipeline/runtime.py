"""Assembles the delivery side of the gateway from settings: connectors, router, dispatcher.

``delivery_component(settings)`` is a start-up part for the app factory (``api.app.Component``).
It starts, in order:

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
from pathlib import Path
from typing import Any

import msgspec

from dakghar.api.services import Services
from dakghar.compliance.optout import handle_inbound
from dakghar.connectors.base import Connector
from dakghar.connectors.http.factory import HTTP_TYPES, build_http_connector
from dakghar.connectors.smpp import InboundHandler, SmppConnector, SmppConnectorConfig
from dakghar.observability.logging import get_logger
from dakghar.observability.metrics import Metrics
from dakghar.pipeline.dispatcher import Dispatcher
from dakghar.pipeline.retry import RetryPolicy
from dakghar.pipeline.routing import SANDBOX_CONNECTOR, Router, checked_router
from dakghar.pipeline.view import LocalDelivery
from dakghar.settings import STATE_FILE, Settings, SettingsError, load_settings
from dakghar.smpp.simulator import Simulator, SimulatorConfig
from dakghar.store.base import MessageRow
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


def delivery_component(
    settings: Settings,
    *,
    reload_on_hup: bool = False,
    config_path: str | None = None,
    scan_interval: float = 2.0,
) -> Callable[[Services], Awaitable[Callable[[], Awaitable[None]]]]:
    """The start-up part that runs the delivery pipeline inside the app's process.

    ``scan_interval``: how often the dispatcher looks for messages nobody told it about (queued
    by another process); the delivery process of ``dakghar serve`` looks every second.
    """

    async def start(svc: Services) -> Callable[[], Awaitable[None]]:
        async def inbound(from_number: str, to: str, text: str) -> None:
            await handle_inbound(svc.store, from_number, to, text)

        connectors = build_connectors(settings.connectors, on_inbound=inbound)
        live = list(connectors)  # before the simulator joins: routes may only name these
        router = build_router(settings.routes, live)
        enabled, sim_config = simulator_config(settings.simulator)
        simulator: Simulator | None = None
        if enabled:
            simulator = Simulator(sim_config)
            host, port = await simulator.start()
            connectors[SANDBOX_CONNECTOR] = SmppConnector(
                SANDBOX_CONNECTOR,
                SmppConnectorConfig.from_settings(
                    {
                        "name": SANDBOX_CONNECTOR,
                        "host": host,
                        "port": port,
                        "system_id": sim_config.system_id or SIMULATOR_SYSTEM_ID,
                        "password": sim_config.password or "",
                        "binds": 1,
                        # 128 in flight keeps a sandbox OTP's accept->submit p99 near 125 ms
                        # behind a 100k backlog (512: ~270 ms) at the same throughput.
                        "window": 128,
                        "rate": 0,
                    }
                ),
            )
        webhooks = WebhookSender.from_settings(svc.store, settings)

        metrics: Metrics | None = svc.extras.get("metrics")

        def changed(rows: Sequence[MessageRow | None]) -> None:
            webhooks.wake()
            if metrics is not None:
                metrics.on_changed(rows)

        dispatcher = Dispatcher(
            svc.store,
            connectors,
            router=router,
            switches=svc.switches,
            policy=RetryPolicy(),
            on_change=changed,
            scan_interval=scan_interval,
            # The embedded store's dispatcher lock makes this the only dispatcher; on a fleet's
            # store it is one of many (claims of dead ones only are rescued).
            exclusive=settings.database_url.startswith("sqlite:///"),
        )
        await webhooks.start()
        try:
            await dispatcher.start()
        except BaseException:  # a failed start leaves no session or listener behind
            await webhooks.stop()
            if simulator is not None:
                await simulator.stop()
            raise
        svc.acceptor.listeners.append(dispatcher.notify)
        svc.delivery = LocalDelivery(dispatcher)
        svc.readiness["connectors"] = lambda: dispatcher.ready
        if metrics is not None:
            metrics.state.sources.append(dispatcher.state)
        svc.extras.update(
            dispatcher=dispatcher,
            simulator=simulator,
            webhooks=webhooks,
        )
        log.info(
            "delivery started",
            connectors=sorted(connectors),
            simulator=simulator.address if simulator else None,
            routes=len(settings.routes),
        )
        pid = os.getpid()

        def snapshot() -> dict[str, Any]:
            return {
                "pid": pid,
                "ready": dispatcher.ready,
                **dispatcher.state(),
                "store_writes": svc.store.write_stats(),
            }

        snapshots = asyncio.create_task(
            write_state_forever(Path(settings.data_dir) / STATE_FILE, snapshot),
            name="dakghar-state",
        )
        loop = asyncio.get_running_loop()
        reloading = reload_on_hup
        if reloading:

            def reload_routes() -> None:
                try:
                    fresh = load_settings(config_path)
                    dispatcher.router = build_router(fresh.routes, live)
                except SettingsError as exc:
                    log.error("routes not reloaded", error=str(exc))
                else:
                    log.info("routes reloaded", routes=len(fresh.routes))

            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, reload_routes)

        async def stop() -> None:
            snapshots.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await snapshots
            if reloading:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signal.SIGHUP)
            if dispatcher.notify in svc.acceptor.listeners:
                svc.acceptor.listeners.remove(dispatcher.notify)
            await dispatcher.stop()
            if simulator is not None:
                await simulator.stop()
            await webhooks.stop()

        return stop

    return start
