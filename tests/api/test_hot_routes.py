"""HotRoutes answers exactly as Starlette's router would, errors included.

The same endpoints are served twice, once routed and once from the hot table, behind the same
exception handlers the gateway installs; every answer must match byte for byte, and the
gateway's own POST /v1/messages must keep its route label in the metrics (test_metrics.py).
"""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from dakghar.api.app import HANDLERS
from dakghar.api.hot import HotRoutes, hot_table
from dakghar.errors import ValidationError


async def echo(request: Request) -> Response:
    body = await request.body()
    if body == b"invalid":
        raise ValidationError("the body says so", errors=[{"field": "body", "code": "bad"}])
    if body == b"teapot":
        raise HTTPException(418, "short and stout", headers={"X-Why": "tea"})
    if body == b"boom":
        raise RuntimeError("an internal detail")
    return JSONResponse(
        {"len": len(body), "endpoint": request.scope["endpoint"].__name__},
        status_code=202,
        headers={"X-Seen": request.headers.get("x-probe", "")},
    )


class Labels:
    """What MetricsMiddleware reads once the request is answered: the endpoint's name."""

    seen: list[str] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.seen.append(getattr(scope.get("endpoint"), "__name__", "unmatched"))


def app(hot: bool) -> Starlette:
    hot_routes = {("POST", "/echo"): echo}
    return Starlette(
        routes=[Route("/echo", echo, methods=["POST"])],
        middleware=[
            Middleware(Labels),
            *([Middleware(HotRoutes, routes=hot_routes, handlers=HANDLERS)] if hot else []),
        ],
        exception_handlers=HANDLERS,
    )


@pytest.mark.parametrize("body", [b"hello", b"", b"invalid", b"teapot", b"boom"])
def test_a_hot_route_answers_as_the_router_does(body: bytes) -> None:
    answers = []
    for hot in (False, True):
        Labels.seen = []
        with TestClient(app(hot), raise_server_exceptions=False) as client:
            r = client.post("/echo", content=body, headers={"X-Probe": "p"})
        answers.append((r.status_code, sorted(r.headers.items()), r.content, Labels.seen))
    assert answers[0] == answers[1]
    status, _headers, content, labels = answers[1]
    assert labels == ["echo"]
    if body == b"boom":
        assert status == 500 and b"internal detail" not in content


def test_what_the_hot_table_does_not_hold_goes_to_the_router() -> None:
    with TestClient(app(True), raise_server_exceptions=False) as client:
        assert client.get("/echo").status_code == 405  # another method: the router's answer
        slash = client.post("/echo/", follow_redirects=False)  # not the exact path
        assert slash.status_code == 307 and slash.headers["location"].endswith("/echo")
        assert client.post("/nothing").status_code == 404


def test_the_hot_table_holds_only_exact_paths_the_router_would_give_the_same_endpoint() -> None:
    async def other(request: Request) -> Response:
        return Response()

    routes = [
        Route("/shadowed", other, methods=["POST"]),
        Route("/shadowed", echo, methods=["POST"]),  # the router never gets here
        Route("/echo", echo, methods=["POST", "PUT"]),
        Route("/echo/{x}", echo, methods=["POST"]),  # a path parameter
        Route("/other", other, methods=["POST"]),  # not asked for
    ]
    assert hot_table(routes, {echo}) == {("POST", "/echo"): echo, ("PUT", "/echo"): echo}
