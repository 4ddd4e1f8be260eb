"""The published OpenAPI document against the app's real routing table, and its examples against
its own schemas: neither side can drift from the other again."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from dakghar.api.openapi import ASSET_TYPES, build_openapi
from tests.conftest import Gateway

# API.md's error table: every code must have an example problem somewhere in the document.
CONTRACT_CODES = {
    "unauthorized", "forbidden", "not_found", "validation_error", "invalid_number",
    "country_not_allowed", "body_empty", "body_too_long", "invalid_sender", "template_mismatch",
    "dnd_blocked", "insufficient_credits", "rate_limited", "idempotency_conflict",
    "sending_paused", "invalid_callback_url", "unregistered_link", "conflict",
}  # fmt: skip
CDN_HOSTS = ("unpkg.com", "jsdelivr.net", "cdnjs.", "googleapis.com", "gstatic.com", "cdn.")
METHODS = ("get", "post", "put", "patch", "delete")


def routes_of(gateway: Gateway) -> list[Route]:
    routes = gateway.client.app.routes  # type: ignore[attr-defined]
    assert all(isinstance(r, Route) for r in routes)
    return list(routes)


def served_by(routes: list[Route], path: str, method: str) -> Route | None:
    """The route Starlette picks for ``method path`` (path parameters filled in), if any."""
    concrete = re.sub(r"{\w+}", "x1", path)
    scope = {"type": "http", "path": concrete, "method": method.upper(), "root_path": ""}
    return next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items() if m in METHODS]


@pytest.fixture
def doc(gateway: Gateway) -> dict[str, Any]:
    r = gateway.client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    document: dict[str, Any] = r.json()
    return document


def test_every_route_of_the_app_is_published_with_every_method(
    gateway: Gateway, doc: dict[str, Any]
) -> None:
    routes = routes_of(gateway)
    published = {(id(served_by(routes, p, m)), m.upper()) for p, m, _ in operations(doc)}
    for route in routes:
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert (id(route), method) in published, f"{method} {route.path} is not published"
    assert len(routes) >= 30


def test_every_published_operation_is_served_by_a_route(
    gateway: Gateway, doc: dict[str, Any]
) -> None:
    routes = routes_of(gateway)
    for path, method, _ in operations(doc):
        assert served_by(routes, path, method) is not None, f"{method} {path} has no route"
    assert {"/v1/account/pause", "/v1/switches/global/resume"} <= set(doc["paths"])
    assert "/v1/switches/connectors/{name}/pause" in doc["paths"]


def test_the_served_document_is_built_from_the_apps_own_routes(
    gateway: Gateway, doc: dict[str, Any]
) -> None:
    assert doc == build_openapi(routes_of(gateway))
    assert doc == build_openapi()  # the default: the routes create_app composes
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))


def test_a_route_without_a_declaration_cannot_be_published() -> None:
    async def undeclared(request: Request) -> Response:
        return Response()

    with pytest.raises(LookupError, match="GET /v1/new"):
        build_openapi([Route("/v1/new", undeclared, methods=["GET"])])


def test_every_contract_error_code_has_an_example_problem(doc: dict[str, Any]) -> None:
    seen: set[str] = set()
    for _, _, op in operations(doc):
        for status, response in op["responses"].items():
            problem = response.get("content", {}).get("application/problem+json")
            if problem is None:
                continue
            assert problem["examples"], f"{op['operationId']} {status} has no example"
            for code, example in problem["examples"].items():
                value = example["value"]
                assert (value["code"], str(value["status"])) == (code, status)
                assert value["type"] == f"urn:dakghar:error:{code}"
                assert value["title"] and value["detail"]
                assert f"`{code}`" in response["description"]
                seen.add(code)
    assert seen >= CONTRACT_CODES, CONTRACT_CODES - seen
    sending = doc["paths"]["/v1/messages"]["post"]["responses"]
    assert "Retry-After" in sending["429"]["headers"] and "Retry-After" in sending["503"]["headers"]


def _examples(media: dict[str, Any]) -> list[Any]:
    if "examples" in media:
        return [e["value"] for e in media["examples"].values()]
    return [media["example"]] if "example" in media else []


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    # $refs point into the document's components; give the schema the document as its root.
    return jsonschema_rs.validator_for({**schema, "components": doc["components"]})


def test_every_operation_has_examples_that_match_its_own_schemas(doc: dict[str, Any]) -> None:
    checked = 0
    for path, method, op in operations(doc):
        contents = [("request", op["requestBody"]["content"])] if "requestBody" in op else []
        contents += [
            (status, r["content"]) for status, r in op["responses"].items() if "content" in r
        ]
        assert any(where != "request" for where, _ in contents), f"{method} {path}: no answer"
        for where, content in contents:
            for media_type, media in content.items():
                examples = _examples(media)
                assert examples, f"{method} {path} {where} {media_type}: no example"
                if "json" not in media_type:
                    continue
                validator = _validator(doc, media["schema"])
                for example in examples:
                    errors = [e.message for e in validator.iter_errors(example)]
                    assert not errors, f"{method} {path} {where}: {errors}"
                    checked += 1
    assert checked > 100


def test_schemas_of_the_structs_are_components(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert {"MessageRequest", "Message", "BatchResponse", "AccountView", "Problem"} <= set(schemas)
    body = doc["paths"]["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/MessageRequest"}
    assert body["example"]["to"] == "+919812345678"
    reply = doc["paths"]["/v1/messages/{message_id}"]["get"]["responses"]["200"]
    assert reply["content"]["application/json"]["example"]["events"][0]["status"] == "queued"


def test_the_docs_page_and_its_assets_come_from_the_gateway(gateway: Gateway) -> None:
    page = gateway.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/docs/assets/swagger-ui-bundle.js" in assets and "/openapi.json" in assets
    assert all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in (a for a in assets if a.startswith("/docs/assets/")):
        r = gateway.client.get(asset)
        assert r.status_code == 200 and r.content, asset
        kind = "javascript" if asset.endswith(".js") else "css"
        assert kind in r.headers["content-type"]
        assert not [host for host in CDN_HOSTS if host in r.text], asset
    licence = gateway.client.get("/docs/assets/LICENSE")
    assert "Apache License" in licence.text
    for name in ("README.md", "docs.html", "..%2Fdashboard.html", "nothing.js"):
        r = gateway.client.get(f"/docs/assets/{name}")
        assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_the_docs_assets_are_package_data_of_a_non_editable_install() -> None:
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["dakghar"]
    package = root / "src" / "dakghar"
    shipped = {p for g in globs for p in package.glob(g)}
    for name in (*ASSET_TYPES, "docs.html"):
        assert package / "api" / "static" / "docs" / name in shipped, f"{name}: not in the wheel"
