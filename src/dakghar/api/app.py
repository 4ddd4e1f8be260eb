"""The app factory: the ASGI face of the composition root (``dakghar.gateway``).

``create_app(settings)`` returns the ASGI app; its lifespan opens a :class:`Gateway` with the
API's role and closes it at shutdown, so tests build exactly the graph production runs. The
app adds only HTTP: routes, middleware, problem+json errors and ``/metrics``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

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
from dakghar.api.hot import Handler, HotRoutes, hot_table
from dakghar.api.metrics_access import MetricsAccess, MetricsListenerOnly
from dakghar.api.problems import handle_dakghar_error, handle_http_exception, handle_unexpected
from dakghar.errors import DakgharError
from dakghar.gateway import Component, DeliveryMode, Gateway
from dakghar.observability.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from dakghar.settings import Settings, ensure_secret_key
from dakghar.store import Store

if TYPE_CHECKING:
    from dakghar.pipeline.runtime import DeliveryPlan

__all__ = ["Component", "create_app"]

# Most of the traffic: answered past the router (``api.hot``).
HOT = (messages.send_message, messages.send_batch, otp.send_otp, otp.check_otp)
# Every error as problem+json; the hot routes use the same table.
HANDLERS: dict[type[Exception], Handler] = {
    DakgharError: handle_dakghar_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    delivery: DeliveryMode = "none",
    plan: DeliveryPlan | None = None,
    delivery_argv: Sequence[str] | None = None,
    alerts: bool = False,
    reload_on_hup: bool = False,
    config_path: str | None = None,
    components: Sequence[Component] | None = None,
    metrics_access: MetricsAccess | None = None,
) -> Starlette:
    """The ASGI application for ``settings``.

    ``delivery`` … ``config_path`` say which parts the gateway runs (``Gateway.open``); by
    default the API alone, over ``store`` or the one ``settings`` names. ``components`` start
    last, with the services. ``metrics_access`` says who may read ``/metrics`` (``dakghar
    serve`` passes the rule for the addresses it bound); by default it is derived from
    ``settings`` and the environment.
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
        gateway = await Gateway.open(
            settings,
            role="api",
            store=store,
            metrics=metrics,
            delivery=delivery,
            plan=plan,
            delivery_argv=delivery_argv,
            alerts=alerts,
            reload_on_hup=reload_on_hup,
            config_path=config_path,
            components=components or (),
        )
        app.state.gateway = gateway
        app.state.services = gateway.services
        try:
            yield
        finally:
            await gateway.close()

    routes = [
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
    ]
    return Starlette(
        routes=routes,
        middleware=[
            # Outermost, so that requests to the metrics listener's other paths are not counted.
            *([Middleware(MetricsListenerOnly, access=access)] if access.listener_ports else []),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(HotRoutes, routes=hot_table(routes, HOT), handlers=HANDLERS),
        ],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
