"""The app factory: builds the whole object graph from ``Settings`` in one place.

``create_app(settings)`` returns the ASGI app; its lifespan opens the store and starts the
background parts, so tests build exactly the graph production runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dakghar.api import (
    account,
    analytics,
    callbacks,
    campaigns,
    dashboard,
    messages,
    openapi,
    operations,
    otp,
)
from dakghar.api.metrics_access import MetricsAccess, MetricsListenerOnly
from dakghar.api.problems import handle_dakghar_error, handle_http_exception, handle_unexpected
from dakghar.api.services import Services
from dakghar.errors import DakgharError
from dakghar.observability.logging import get_logger
from dakghar.observability.metrics import (
    CONTENT_TYPE,
    Metrics,
    MetricsMiddleware,
    refresh_forever,
)
from dakghar.otp import OtpService
from dakghar.settings import Settings, ensure_secret_key
from dakghar.store import Store, open_store
from dakghar.store.base import now_ms

RETENTION_EVERY_SECONDS = 600.0


async def purge_forever(store: Store, every: float = RETENTION_EVERY_SECONDS) -> None:
    """Run the retention purge (``Store.purge_bodies``) at start and then every ``every`` s."""
    log = get_logger("dakghar.retention")
    while True:
        try:
            purged = await store.purge_bodies(now_ms())
            if purged:
                log.info("retention purge", bodies=purged)
        except Exception:  # a failed run is retried at the next one; the gateway goes on
            log.exception("retention purge failed")
        await asyncio.sleep(every)


# A part started with the app (dispatcher, simulator, ...): gets the services, returns its stop.
Component = Callable[[Services], Awaitable[Callable[[], Awaitable[None]]]]


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    components: list[Component] | None = None,
    metrics_access: MetricsAccess | None = None,
) -> Starlette:
    """The ASGI application for ``settings``.

    ``metrics_access`` says who may read ``/metrics`` (``dakghar serve`` passes the rule for the
    addresses it bound); by default it is derived from ``settings`` and the environment.
    """
    settings = ensure_secret_key(settings)
    metrics = Metrics()
    access = metrics_access or MetricsAccess.from_settings(settings)

    async def metrics_endpoint(request: Request) -> Response:
        """``GET /metrics``: Prometheus text format, to whoever ``access`` admits."""
        refusal = access.refusal(request)
        if refusal is not None:
            return refusal
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        st = store or open_store(settings)
        await st.open()
        svc = await Services.assemble(settings, st)
        svc.extras["metrics"] = metrics
        otp_service = svc.extras["otp"] = OtpService(st, svc.acceptor, settings.secret)
        metrics.state.otp = otp_service.stats
        svc.acceptor.listeners.append(metrics.on_accepted)
        app.state.services = svc
        refresher = asyncio.create_task(refresh_forever(metrics, st), name="dakghar-metrics")
        purger = asyncio.create_task(purge_forever(st), name="dakghar-retention")
        stops = []
        try:
            # Campaigns first: ingests a crash interrupted are ended before anything dispatches.
            stops.append(await campaigns.component(svc))
            for component in components or []:
                stops.append(await component(svc))
            yield
        finally:
            for stop in reversed(stops):
                await stop()
            for task in (refresher, purger):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await st.close()

    return Starlette(
        routes=[
            *messages.routes,
            *otp.routes,
            *analytics.routes,
            *dashboard.routes,
            *campaigns.routes,
            *account.routes,
            *operations.routes,
            *callbacks.routes,
            *openapi.routes,
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        middleware=[
            # Outermost, so that requests to the metrics listener's other paths are not counted.
            *([Middleware(MetricsListenerOnly, access=access)] if access.listener_ports else []),
            Middleware(MetricsMiddleware, metrics=metrics),
        ],
        exception_handlers={
            DakgharError: handle_dakghar_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
