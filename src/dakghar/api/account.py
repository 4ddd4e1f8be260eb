"""``/v1/account`` and the health endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dakghar.api import render, schemas
from dakghar.api.services import JSON, services


async def get_account(request: Request) -> Response:
    """``GET /v1/account``: balance, limits, default sender and region."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    fresh = await svc.store.get_account(caller.account.id) or caller.account
    return Response(render.encoder.encode(render.account(fresh, caller.key.mode)), media_type=JSON)


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return Response(render.encoder.encode(schemas.Health("ok")), media_type=JSON)


async def readyz(request: Request) -> Response:
    """Readiness: the store answers, the queue is there, and a connector is bound."""
    svc = services(request)
    checks: dict[str, str] = {}
    checks["store"] = "ok" if await svc.store.ping() else "down"
    for name, probe in svc.readiness.items():
        checks[name] = "ok" if probe() else "down"
    ok = all(v == "ok" for v in checks.values())
    body = render.encoder.encode(schemas.Health("ok" if ok else "unavailable", checks))
    return Response(body, status_code=200 if ok else 503, media_type=JSON)


routes = [
    Route("/v1/account", get_account, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
