"""The composition root: the whole gateway, opened from settings in one order, closed in reverse.

Every process role composes one :class:`Gateway` and builds nothing of its own:

- the API (``api.app.create_app``, whose lifespan opens it with ``role="api"``): store,
  services (auth, accept, OTP, campaigns), metrics, the retention purge, the delivery side
  (``delivery``: ``"inline"`` in this process, ``"process"`` in a child this process starts and
  watches, ``"remote"`` run apart on the same store, ``"none"``), the ``[[alerts]]`` evaluator;
- the delivery process (``dakghar serve --role dispatcher``, ``role="dispatcher"``): store,
  the delivery side, the hint socket other processes wake it through, its metrics file.

Parts below this module (``api``, ``pipeline``, ``observability``, ...) never import it; the app
factory in ``api.app`` and ``cli.serve`` are the two modules that compose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Literal

from dakghar.api.auth import Authenticator
from dakghar.api.services import Services
from dakghar.campaigns.service import CampaignService
from dakghar.coord import Coordinator, HintPublisher, Topic, listen_hints, open_coordinator
from dakghar.observability.alerts import AlertEvaluator, parse_rules, start_alerts
from dakghar.observability.logging import get_logger
from dakghar.observability.metrics import Metrics, refresh_forever
from dakghar.otp import OtpService
from dakghar.otp.protection import Protection
from dakghar.pipeline.accept import Acceptor
from dakghar.pipeline.switches import Switchboard
from dakghar.pipeline.view import DeliveryView
from dakghar.settings import Settings, ensure_secret_key
from dakghar.store import Store, open_store
from dakghar.store.base import now_ms
from dakghar.store.campaigns import CampaignStore

if TYPE_CHECKING:  # the SMPP stack is loaded only by a process that delivers
    from dakghar.pipeline.process import DeliveryProcess
    from dakghar.pipeline.runtime import DeliveryPlan, Pipeline

Role = Literal["api", "dispatcher"]
DeliveryMode = Literal["inline", "process", "remote", "none"]
Stop = Callable[[], Awaitable[None]]
# A part started after the gateway's own (the pid file, the demo banner): gets the services,
# returns its stop.
Component = Callable[[Services], Awaitable[Stop]]

RETENTION_EVERY_SECONDS = 600.0
INLINE_SCAN_SECONDS = 2.0  # how often a dispatcher looks for messages nobody told it about
PROCESS_SCAN_SECONDS = 1.0  # ... in the delivery process, where others' hints may be lost

log = get_logger("dakghar.gateway")


async def purge_forever(store: Store, every: float = RETENTION_EVERY_SECONDS) -> None:
    """Run the retention purge (``Store.purge_bodies``) at start and then every ``every`` s."""
    retention = get_logger("dakghar.retention")
    while True:
        try:
            purged = await store.purge_bodies(now_ms())
            if purged:
                retention.info("retention purge", bodies=purged)
        except Exception:  # a failed run is retried at the next one; the gateway goes on
            retention.exception("retention purge failed")
        await asyncio.sleep(every)


class Gateway:
    """The running gateway of one process: its parts, typed, and the order they stop in."""

    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        self.services = services
        self.delivery_process: DeliveryProcess | None = None  # the child, or the link to it
        self._stops: list[Stop] = []

    @property
    def store(self) -> Store:
        """The store every part works over."""
        return self.services.store

    @property
    def metrics(self) -> Metrics:
        """This process's metrics (``/metrics``; the delivery process writes them to a file)."""
        return self.services.metrics

    @property
    def otp(self) -> OtpService:
        """The OTP service."""
        return self.services.otp

    @property
    def campaigns(self) -> CampaignService | None:
        """The campaign service (None in the delivery process, or where campaigns cannot be)."""
        return self.services.campaigns

    @property
    def alerts(self) -> AlertEvaluator | None:
        """The ``[[alerts]]`` evaluator, when this process runs it."""
        return self.services.alerts

    @property
    def delivery(self) -> DeliveryView | None:
        """The delivery side as the API sees it, wherever it runs."""
        return self.services.delivery

    @property
    def pipeline(self) -> Pipeline | None:
        """The delivery side when it runs in this process (dispatcher, simulator, webhooks)."""
        runtime = sys.modules.get("dakghar.pipeline.runtime")  # not loaded: no pipeline here
        delivery = self.services.delivery
        return delivery if runtime and isinstance(delivery, runtime.Pipeline) else None

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        role: Role = "api",
        store: Store | None = None,
        metrics: Metrics | None = None,
        delivery: DeliveryMode = "none",
        plan: DeliveryPlan | None = None,
        delivery_argv: Sequence[str] | None = None,
        alerts: bool = False,
        alerts_interval: float = 5.0,
        reload_on_hup: bool = False,
        config_path: str | None = None,
        components: Sequence[Component] = (),
    ) -> Gateway:
        """Open the store and start this process's parts of the gateway, in one order.

        ``role="dispatcher"`` runs the delivery side alone (``delivery`` is then inline).
        ``plan``: the connectors, router and simulator ``dakghar serve`` built when it checked
        the config (built here from ``settings`` when not given). ``delivery_argv``: the
        delivery process's command line (``delivery="process"``). ``alerts``: evaluate
        ``[[alerts]]`` every ``alerts_interval`` seconds. ``reload_on_hup``: SIGHUP re-reads
        the routes from ``config_path``. A part that fails to start stops those before it.
        """
        settings = ensure_secret_key(settings)
        store = store or open_store(settings)
        await store.open()
        try:
            switches = Switchboard(store)
            await switches.refresh()
        except BaseException:
            await store.close()
            raise
        acceptor = Acceptor(store, switches, data_dir=settings.data_dir)
        coord = open_coordinator(settings)
        api = role == "api"
        # Campaign ingests run where the API runs, on the store that holds their files' rows.
        campaigns = (
            CampaignService(store, acceptor) if api and isinstance(store, CampaignStore) else None
        )
        services = Services(
            settings=settings,
            store=store,
            auth=Authenticator(store, settings.secret, limiter=coord if coord.shared else None),
            acceptor=acceptor,
            switches=switches,
            metrics=metrics or Metrics(),
            otp=OtpService(
                store,
                acceptor,
                settings.secret,
                protection=Protection(shared=coord if coord.shared else None),
            ),
            campaigns=campaigns,
            coord=coord,
        )
        gateway = cls(settings, services)
        gateway._stops.append(store.close)
        gateway._stops.append(coord.close)
        try:
            if coord.shared:
                gateway._join_fleet(coord)
            if api:
                await gateway._start_api()
                await gateway._start_delivery(
                    delivery, plan, delivery_argv, reload_on_hup, config_path
                )
                if alerts:
                    rules = parse_rules(settings.alerts)
                    evaluator = await start_alerts(rules, services, alerts_interval)
                    gateway._stops.append(evaluator.stop)
            else:
                await gateway._start_dispatcher(plan, reload_on_hup, config_path)
            for component in components:
                gateway._stops.append(await component(services))
        except BaseException:
            await gateway.close()
            raise
        return gateway

    async def close(self) -> None:
        """Stop every part in the reverse of the order it started in; the store closes last."""
        stops, self._stops = self._stops, []
        failed: BaseException | None = None
        for stop in reversed(stops):
            try:
                await stop()
            except BaseException as exc:  # the rest still stop; the first failure is raised
                log.exception("a part of the gateway failed to stop")
                failed = failed or exc
        if failed is not None:
            raise failed

    def _join_fleet(self, coord: Coordinator) -> None:
        """Share changes with the other processes: kill switches, pauses and revoked keys
        take effect everywhere at once (within a second), not at each one's next refresh."""
        svc = self.services
        refreshing: set[asyncio.Task[None]] = set()

        def refresh() -> None:
            task = asyncio.get_running_loop().create_task(svc.switches.refresh())
            refreshing.add(task)
            task.add_done_callback(refreshing.discard)

        def received(topic: str, payload: bytes) -> None:
            subject = payload.decode(errors="replace")
            if topic == Topic.KEY_REVOKED:
                svc.auth.forget_key(subject)
            elif topic == Topic.ACCOUNT_PAUSE:
                svc.auth.forget_account(subject)
                refresh()
            elif topic == Topic.KILL_SWITCH:
                refresh()

        def resync() -> None:  # messages may have been missed: read everything again
            svc.auth.forget()
            refresh()

        topics = [Topic.KEY_REVOKED, Topic.ACCOUNT_PAUSE, Topic.KILL_SWITCH]
        subscription = coord.subscribe(topics, received, resync)

        async def announce(scope: str, name: str, paused: bool) -> None:
            topic = Topic.ACCOUNT_PAUSE if scope == "account" else Topic.KILL_SWITCH
            with contextlib.suppress(Exception):  # stored already; the others' refresh finds it
                await coord.publish(topic, (name if scope == "account" else scope).encode())

        svc.switches.on_change.append(announce)

        async def leave() -> None:
            subscription.close()

        self._stops.append(leave)

    def _task(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)

        async def cancel() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        self._stops.append(cancel)

    async def _start_api(self) -> None:
        svc, metrics = self.services, self.services.metrics
        if svc.coord is not None and svc.coord.shared:
            hints = HintPublisher(svc.coord)  # wake every dispatcher of the fleet after accept
            svc.acceptor.listeners.append(hints)
            self._stops.append(hints.close)
        metrics.state.otp = svc.otp.stats
        svc.acceptor.listeners.append(metrics.on_accepted)
        self._task(refresh_forever(metrics, svc.store), "dakghar-metrics")
        self._task(purge_forever(svc.store), "dakghar-retention")
        if svc.campaigns is not None:
            # First: ingests a crash interrupted are ended before anything dispatches.
            await svc.campaigns.recover()
            self._stops.append(svc.campaigns.close)

    async def _start_delivery(
        self,
        mode: DeliveryMode,
        plan: DeliveryPlan | None,
        argv: Sequence[str] | None,
        reload_on_hup: bool,
        config_path: str | None,
    ) -> None:
        if mode == "none":
            return
        if mode == "inline":
            await self._start_pipeline(plan, reload_on_hup, config_path, INLINE_SCAN_SECONDS)
            return
        from dakghar.pipeline.process import DeliveryProcess
        from dakghar.pipeline.runtime import DeliveryPlan

        plan = plan or DeliveryPlan.from_settings(self.settings)
        svc = self.services
        process = DeliveryProcess(self.settings, argv if mode == "process" else None)
        self.delivery_process = process
        self._stops.append(process.stop)
        view = await process.start(
            svc.store, svc.acceptor, connectors=plan.connectors, names=plan.names,
            metrics=svc.metrics,
        )  # fmt: skip
        svc.delivery = view
        svc.readiness["connectors"] = lambda: view.ready

    async def _start_pipeline(
        self,
        plan: DeliveryPlan | None,
        reload_on_hup: bool,
        config_path: str | None,
        scan_interval: float,
    ) -> Pipeline:
        from dakghar.pipeline.runtime import Pipeline

        svc = self.services
        pipeline = await Pipeline.start(
            self.settings,
            svc.store,
            switches=svc.switches,
            acceptor=svc.acceptor,
            metrics=svc.metrics,
            plan=plan,
            reload_on_hup=reload_on_hup,
            config_path=config_path,
            scan_interval=scan_interval,
            fleet_pacer=svc.coord if svc.coord is not None and svc.coord.shared else None,
        )
        self._stops.append(pipeline.stop)
        svc.delivery = pipeline
        svc.readiness["connectors"] = lambda: pipeline.ready
        return pipeline

    async def _start_dispatcher(
        self, plan: DeliveryPlan | None, reload_on_hup: bool, config_path: str | None
    ) -> None:
        from dakghar.pipeline.process import listen_for_hints, metrics_path, write_forever

        pipeline = await self._start_pipeline(
            plan, reload_on_hup, config_path, PROCESS_SCAN_SECONDS
        )
        close_hints = listen_for_hints(self.settings, pipeline.dispatcher.merge)
        if close_hints is not None:
            self._stops.append(close_hints)
        coord = self.services.coord
        if coord is not None and coord.shared:
            subscription = listen_hints(coord, pipeline.dispatcher.merge)

            async def unlisten() -> None:
                subscription.close()

            self._stops.append(unlisten)
        elif close_hints is None:
            # No wake-up hints reach this dispatcher: its scan is how it finds new messages.
            pipeline.dispatcher.scan_interval = pipeline.dispatcher.sweep_interval
        metrics = self.services.metrics
        self._task(write_forever(metrics_path(self.settings), metrics.render), "dakghar-metrics")
