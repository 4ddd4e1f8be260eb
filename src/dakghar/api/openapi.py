"""The published OpenAPI 3.1 document (``/openapi.json``), generated from the app's routes, and the
interactive reference at ``/docs`` (Swagger UI, served from the package: no CDN, works offline).

Paths and methods come from walking ``app.routes``; each route's operation comes from the
``Endpoint`` declared beside its handler (``api.endpoint``), so a route cannot be published
without its documentation nor documentation without its route. Component schemas come from the
msgspec Structs that decode requests; the rest, and the examples, from ``api.openapi_schemas``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from dakghar import __version__
from dakghar.api.endpoint import Body, Endpoint, Param, Reply, Schema, documented, endpoint_for
from dakghar.api.openapi_schemas import (
    ERROR_STATUS_TITLE,
    STRUCTS,
    problem_example,
)
from dakghar.errors import NotFound

_REF = "#/components/schemas/{name}"
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}
_DOCS_TAG = "Documentation"
# The reference's sections, in reading order (each Endpoint names one).
TAGS = {
    "Messages": "Send, read, list and cancel messages; batches of up to 1,000",
    "OTP": "Verification codes: send, resend, check (the code never appears in an answer)",
    "Campaigns": "Bulk sends from a CSV upload, with live progress and a report",
    "Account": "The calling account's settings and webhook secret",
    "Operations": "Kill switches, connectors, statistics, health, metrics and provider callbacks",
    _DOCS_TAG: "This reference and its machine-readable document",
}
ASSETS = Path(__file__).parent / "static" / "docs"
# Files /docs/assets/ serves (nothing else from that folder): name -> media type.
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "dakghar-docs.js": "text/javascript; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
}

# Routes app.py composes itself (their handlers are closures over the app's parts).
COMPOSED: dict[str, Endpoint] = {
    "/metrics": Endpoint(
        tag="Operations",
        summary="Prometheus metrics (text exposition format)",
        operation_id="metrics",
        auth=False,
        description="No API key. Open to loopback peers by default (403 `forbidden` to others "
        "when the API listens beyond loopback); with `[metrics] token_env` every request needs "
        "`Authorization: Bearer <token>` (401 `unauthorized`); with `[metrics] port` it is "
        "served on that listener only (404 `not_found` here). See docs/observability.md.",
        errors=("unauthorized", "forbidden", "not_found"),
        replies={
            200: Reply(
                "Metrics",
                {"type": "string"},
                'dakghar_messages_accepted_total{type="transactional"} 1.0\n',
                "text/plain",
            )
        },
    )
}


def _schema(schema: Schema) -> dict[str, Any]:
    return {"$ref": _REF.format(name=schema)} if isinstance(schema, str) else schema


def _content(media_type: str, schema: Schema, example: Any, examples: Mapping[str, Any]) -> Any:
    media: dict[str, Any] = {"schema": _schema(schema)}
    if examples:
        media["examples"] = {name: {"value": value} for name, value in examples.items()}
    elif example is not None:
        media["example"] = example
    return {media_type: media}


def _reply(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.schema is not None:
        out["content"] = {
            media: _content(media, reply.schema, reply.example, {})[media]
            for media in (reply.media_type, *reply.also)
        }
    return out


def _body(body: Body) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            media: _content(media, body.schema, body.example, body.examples)[media]
            for media in (body.media_type, *body.also)
        },
    }


def _param(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.where, "schema": p.schema}
    out["required"] = p.required or p.where == "path"
    if p.description:
        out["description"] = p.description
    if p.example is not None:
        out["example"] = p.example
    return out


def _problems(codes: Sequence[str]) -> dict[str, Any]:
    """One response per status, each code of it an example problem (RFC 9457)."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(ERROR_STATUS_TITLE[code][0], []).append(code)
    out: dict[str, Any] = {}
    for status, group in sorted(by_status.items()):
        titles = "; ".join(f"`{c}`: {ERROR_STATUS_TITLE[c][1]}" for c in group)
        examples = {
            c: {"summary": f"{c}: {ERROR_STATUS_TITLE[c][1]}", "value": problem_example(c)}
            for c in group
        }
        response: dict[str, Any] = {
            "description": titles,
            "content": {
                "application/problem+json": {"schema": _schema("Problem"), "examples": examples}
            },
        }
        if status in (429, 503):
            response["headers"] = _RETRY_AFTER
        out[str(status)] = response
    return out


def _expand(
    template: str, expand: Mapping[str, tuple[str, ...]]
) -> Iterator[tuple[str, dict[str, str]]]:
    """Each published path of a route: ``expand``ed parameters become fixed segments."""
    names = list(expand)
    for values in itertools.product(*(expand[n] for n in names)):
        chosen = dict(zip(names, values, strict=True))
        path = template
        for name, value in chosen.items():
            path = path.replace("{" + name + "}", value)
        yield path, chosen


def _operation(endpoint: Endpoint, path: str, values: dict[str, str]) -> dict[str, Any]:
    names = {**values, **{k.capitalize(): v.capitalize() for k, v in values.items()}}
    summary, operation_id = endpoint.summary, endpoint.operation_id
    if values:
        summary, operation_id = summary.format(**names), operation_id.format(**names)
    op: dict[str, Any] = {"tags": [endpoint.tag], "summary": summary, "operationId": operation_id}
    if endpoint.description:
        op["description"] = endpoint.description
    op["security"] = [{"bearer": []}] if endpoint.auth else []
    in_path = _PARAM.findall(path)
    params = [p for p in endpoint.params if p.where != "path" or p.name in in_path]
    declared = {p.name for p in params if p.where == "path"}
    params += [Param(n, "path", {"type": "string"}) for n in in_path if n not in declared]
    if params:
        op["parameters"] = [_param(p) for p in params]
    if endpoint.body is not None:
        op["requestBody"] = _body(endpoint.body)
    responses = {str(status): _reply(r) for status, r in endpoint.replies.items()}
    common = ("unauthorized", "rate_limited") if endpoint.auth else ()
    problems = _problems((*endpoint.errors, *common))
    if endpoint.tag not in TAGS:
        raise ValueError(f"{operation_id}: tag {endpoint.tag!r} is not one of {list(TAGS)}")
    if clash := set(responses) & set(problems):
        raise ValueError(f"{operation_id}: statuses {sorted(clash)} are both a reply and a problem")
    op["responses"] = dict(sorted({**responses, **problems}.items()))
    return op


def _default_routes() -> list[BaseRoute]:
    from dakghar.api.app import create_app  # the app imports this module
    from dakghar.settings import Settings

    settings = msgspec.structs.replace(Settings(), secret_key="openapi-document-only")
    return list(create_app(settings).routes)


def build_openapi(routes: Sequence[BaseRoute] | None = None) -> dict[str, Any]:
    """The whole OpenAPI document for ``routes`` (by default, those of ``create_app``)."""
    _, components = msgspec.json.schema_components(STRUCTS, ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in _default_routes() if routes is None else routes:
        if not isinstance(route, Route):
            raise TypeError(f"{route!r}: only Routes can be documented")
        for method in sorted((route.methods or set()) - {"HEAD"}):
            endpoint = endpoint_for(route.endpoint, route.path, method) or COMPOSED.get(route.path)
            if endpoint is None:
                raise LookupError(f"{method} {route.path}: no Endpoint declared for its handler")
            template = _PARAM.sub(r"{\1}", route.path)
            for path, values in _expand(template, endpoint.expand):
                paths.setdefault(path, {})[method.lower()] = _operation(endpoint, path, values)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dakghar SMS gateway",
            "version": __version__,
            "description": "Send SMS through one REST API. Errors are RFC 9457 problem details "
            "(`application/problem+json`) with a stable `code`. Sandbox keys (`test_...`) only "
            "ever reach the built-in simulated carrier: use one to try calls here.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API key: test_... (sandbox) or live_...",
                }
            },
        },
    }


_HTML = Reply("The page", {"type": "string"}, "<!doctype html>...", "text/html")


@documented(
    Endpoint(
        tag=_DOCS_TAG,
        summary="This OpenAPI 3.1 document, generated from the gateway's routes",
        operation_id="getOpenApi",
        auth=False,
        replies={200: Reply("The document", {"type": "object"}, {"openapi": "3.1.0"})},
    )
)
async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``: built once per app from its own routes."""
    state = request.app.state
    document = getattr(state, "openapi_document", None)
    if document is None:
        document = state.openapi_document = msgspec.json.encode(build_openapi(request.app.routes))
    return Response(document, media_type="application/json")


@documented(
    Endpoint(
        tag=_DOCS_TAG,
        summary="Interactive API reference (Swagger UI); try calls with a Bearer key",
        operation_id="getDocs",
        auth=False,
        replies={200: _HTML},
    )
)
async def docs(request: Request) -> Response:
    """``GET /docs``: the Swagger UI page; its scripts and styles come from ``/docs/assets``."""
    return FileResponse(ASSETS / "docs.html", media_type="text/html; charset=utf-8")


@documented(
    Endpoint(
        tag=_DOCS_TAG,
        summary="{name}: a file of the reference page, from the installed package",
        operation_id="getDocsAsset:{name}",
        auth=False,
        # Published one path per file: nothing else is served, and the fuzzer has no input to vary.
        expand={"name": tuple(ASSET_TYPES)},
        replies={
            200: Reply(
                "The file",
                {"type": "string"},
                "/* swagger-ui */",
                "text/css",
                also=("text/javascript", "text/plain"),
            )
        },
    )
)
async def docs_asset(request: Request) -> Response:
    """``GET /docs/assets/{name}``: one of the vendored files; any other name is 404."""
    name = request.path_params["name"]
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"no docs asset named {name!r}")
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(ASSETS / name, media_type=media_type, headers=headers)


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/docs/assets/{name}", docs_asset, methods=["GET"]),
]
