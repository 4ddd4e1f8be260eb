"""The hot endpoints, called straight from the ASGI stack past Starlette's router.

``POST /v1/messages`` is most of an SMS API's traffic. Behind Starlette's router every request
also went through its exception middleware, the route table's matching, ``request_response``
and a second exception wrapper, about a fifth of the API process's main thread while single
POSTs arrived at c=50 (py-spy, 2026-12-03). :class:`HotRoutes` sits inside the metrics
middleware (so the request is counted and timed as before) and looks the request's exact method
and path up in a dict. A hit is answered by the same endpoint function the router would call,
and an exception by the app's own handler for its class, found as Starlette's exception
middleware finds it (the first class of the exception's MRO that has one). The handler for
``Exception`` itself is left, as in Starlette, to the server-error middleware, which the
exception reaches as it does from the router. A miss goes on to the router unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


def hot_table(
    routes: Iterable[BaseRoute], endpoints: Collection[Endpoint]
) -> dict[tuple[str, str], Endpoint]:
    """``(method, path) -> endpoint`` for the routes of ``endpoints`` (their paths and methods
    stay written once, in the route table). A route with path parameters is left out, and so
    is one that an earlier route of the table would answer in its place."""
    routes = list(routes)
    table: dict[tuple[str, str], Endpoint] = {}
    for route in routes:
        if not isinstance(route, Route) or route.endpoint not in endpoints:
            continue
        if route.param_convertors:
            continue
        for method in route.methods or ():
            scope = {"type": "http", "path": route.path, "method": method, "root_path": ""}
            first = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
            if first is route:
                table[(method, route.path)] = route.endpoint
    return table


class HotRoutes:
    """Serve ``routes`` (``(method, path)`` -> endpoint, exact paths only) without routing,
    with ``handlers`` (the app's ``exception_handlers``) for what an endpoint raises."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[tuple[str, str], Endpoint],
        handlers: Mapping[type[Exception], Handler],
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.handlers = {cls: h for cls, h in handlers.items() if cls is not Exception}

    def _handler(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope["endpoint"] = endpoint  # what the router sets: the metrics label the route by it
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)
