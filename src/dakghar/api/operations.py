"""Operations endpoints: kill switches for the account (any of its keys) and, for keys with
the ``admin`` scope, globally and per connector; queue and connector status."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dakghar.api import openapi_schemas as spec
from dakghar.api import render
from dakghar.api.auth import Caller
from dakghar.api.endpoint import Endpoint, Reply, documented, path_param
from dakghar.api.services import JSON, services
from dakghar.errors import Forbidden, NotFound

_PAUSE = {"pause": True, "resume": False}
_TAG = "Operations"
_ACTIONS = {"action": ("pause", "resume")}
_SWITCHES = Reply("Every paused switch", spec.SWITCHES_SCHEMA, spec.SWITCHES_EXAMPLE)


@documented(
    Endpoint(
        tag=_TAG,
        summary="{Action} sending for this account (queued messages wait, none lost)",
        operation_id="{action}Account",
        expand=_ACTIONS,
        replies={200: Reply("The account", "AccountView", spec.ACCOUNT)},
    )
)
async def account_switch(request: Request) -> Response:
    """``POST /v1/account/pause`` and ``/v1/account/resume``: the account's own kill switch."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    paused = _action(request)
    await svc.switches.set("account", caller.account.id, paused)
    svc.auth.forget()
    fresh = await svc.store.get_account(caller.account.id)
    assert fresh is not None
    return Response(render.encoder.encode(render.account(fresh, caller.key.mode)), media_type=JSON)


def _action(request: Request) -> bool:
    action = request.path_params["action"]
    if action not in _PAUSE:
        raise NotFound(f"unknown action {action!r}: use pause or resume")
    return _PAUSE[action]


def _admin(caller: Caller) -> None:
    if not caller.key.has_scope("admin"):
        raise Forbidden(
            "this call needs a key with the 'admin' scope (dakghar keys create --admin)"
        )


@documented(
    Endpoint(
        tag=_TAG,
        summary="Every paused switch (admin scope)",
        operation_id="listSwitches",
        replies={200: _SWITCHES},
        errors=("forbidden",),
    )
)
async def switches_view(request: Request) -> Response:
    """``GET /v1/switches``: every paused switch (admin)."""
    svc = services(request)
    _admin(await svc.auth.authenticate(request))
    await svc.switches.refresh()
    return Response(render.encoder.encode({"paused": svc.switches.snapshot()}), media_type=JSON)


@documented(
    Endpoint(
        tag=_TAG,
        summary="{Action} sending for everyone (admin scope)",
        operation_id="{action}Global",
        expand={"scope": ("global",), **_ACTIONS},
        path="/v1/switches/{scope:str}/{action:str}",
        replies={200: _SWITCHES},
        errors=("forbidden",),
    ),
    Endpoint(
        tag=_TAG,
        summary="{Action} one connector; its traffic fails over (admin scope)",
        operation_id="{action}Connector",
        expand={"scope": ("connectors",), **_ACTIONS},
        path="/v1/switches/{scope:str}/{name:str}/{action:str}",
        params=(path_param("name", "Connector name ([[connectors]] in dakghar.toml)", "airtel"),),
        replies={200: _SWITCHES},
        errors=("forbidden", "not_found"),
    ),
)
async def switch_flip(request: Request) -> Response:
    """``POST /v1/switches/global/{pause|resume}`` and ``/v1/switches/connectors/{name}/...``."""
    svc = services(request)
    _admin(await svc.auth.authenticate(request))
    paused = _action(request)
    scope = request.path_params["scope"]
    name = request.path_params.get("name", "*")
    if (scope == "global") != (name == "*") or scope not in ("global", "connectors"):
        raise NotFound(
            "use /v1/switches/global/{action} or /v1/switches/connectors/{name}/{action}"
        )
    if scope == "connectors":
        known = svc.delivery.connector_names if svc.delivery is not None else None
        if known is not None and name not in known:
            raise NotFound(f"no connector named {name!r}")
        scope = "connector"
    await svc.switches.set(scope, name, paused)
    return Response(render.encoder.encode({"paused": svc.switches.snapshot()}), media_type=JSON)


@documented(
    Endpoint(
        tag=_TAG,
        summary="Connectors: bound, window in use, breaker state, counters (admin scope)",
        operation_id="listConnectors",
        replies={
            200: Reply(
                "Dispatcher and connector state",
                {"type": "object"},
                {"connectors": {"simulator": {"bound": True, "breaker": "closed"}}},
            )
        },
        errors=("forbidden",),
    )
)
async def connectors_view(request: Request) -> Response:
    """``GET /v1/connectors``: dispatcher, connector and breaker state (admin)."""
    svc = services(request)
    _admin(await svc.auth.authenticate(request))
    state = svc.delivery.state() if svc.delivery is not None else {"connectors": {}}
    return Response(render.encoder.encode(state), media_type=JSON)


routes = [
    Route("/v1/connectors", connectors_view, methods=["GET"]),
    Route("/v1/account/{action:str}", account_switch, methods=["POST"]),
    Route("/v1/switches", switches_view, methods=["GET"]),
    Route("/v1/switches/{scope:str}/{action:str}", switch_flip, methods=["POST"]),
    Route("/v1/switches/{scope:str}/{name:str}/{action:str}", switch_flip, methods=["POST"]),
]
