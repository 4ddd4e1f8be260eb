"""Per-endpoint OpenAPI declarations, kept beside each handler.

A handler module decorates its handler with ``@documented(Endpoint(...))``; ``api.openapi``
walks the app's routes and asks :func:`endpoint_for` for each route and method, so a route added
without its declaration fails the document build (and its test) instead of silently missing from
``/openapi.json``, and a declaration cannot describe a path that no route serves.
This module knows nothing of the document's layout: that is ``api.openapi``'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

# A component schema by name (``"Message"``) or an inline JSON Schema.
Schema = str | dict[str, Any]
Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Param:
    """A query, header or path parameter."""

    name: str
    where: Literal["query", "header", "path"]
    schema: dict[str, Any]
    description: str = ""
    example: Any = None
    required: bool = False


@dataclass(frozen=True)
class Body:
    """The request body: its schema and one example (or several, named, for alternatives)."""

    schema: Schema
    example: Any = None
    examples: Mapping[str, Any] = field(default_factory=dict)
    media_type: str = "application/json"
    also: tuple[str, ...] = ()  # further media types with the same schema


@dataclass(frozen=True)
class Reply:
    """A documented answer that is not a problem: its schema and an example (``None``: no body)."""

    description: str
    schema: Schema | None = None
    example: Any = None
    media_type: str = "application/json"
    also: tuple[str, ...] = ()  # further media types with the same schema (JS and CSS files)


@dataclass(frozen=True)
class Endpoint:
    """One operation: what it does, what it takes, and every answer with an example.

    ``errors`` names problem ``code``s (API.md's table); ``api.openapi`` groups them by status and
    adds ``unauthorized`` and ``rate_limited`` to every operation that needs a key.
    ``summary`` and ``operation_id`` may name ``expand``ed path parameters (``{action}``, or
    ``{Action}`` capitalised): each value becomes its own published path (``/v1/account/pause``).
    ``path`` binds the declaration to one route when a handler serves several.
    """

    tag: str
    summary: str
    operation_id: str
    replies: Mapping[int, Reply]
    errors: tuple[str, ...] = ()
    body: Body | None = None
    params: tuple[Param, ...] = ()
    description: str = ""
    auth: bool = True
    expand: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    path: str | None = None
    method: str | None = None


# Where a handler keeps its declarations: on the function itself, so they live and die with it.
_ATTRIBUTE = "__dakghar_endpoints__"


def documented(*endpoints: Endpoint) -> Callable[[Handler], Handler]:
    """Attach ``endpoints`` to a handler; the handler itself is returned unchanged."""

    def attach(handler: Handler) -> Handler:
        vars(handler)[_ATTRIBUTE] = (*vars(handler).get(_ATTRIBUTE, ()), *endpoints)
        return handler

    return attach


def endpoint_for(handler: Callable[..., Any], path: str, method: str) -> Endpoint | None:
    """The declaration for ``method`` on the route at ``path`` served by ``handler``."""
    declared: tuple[Endpoint, ...] = getattr(handler, _ATTRIBUTE, ())
    for key in ((path, method), (path, None), (None, method), (None, None)):
        for endpoint in declared:
            if (endpoint.path, endpoint.method) == key:
                return endpoint
    return None


def query(name: str, schema: dict[str, Any], description: str, example: Any = None) -> Param:
    """An optional query parameter."""
    return Param(name, "query", schema, description, example)


def path_param(name: str, description: str, example: str, max_length: int = 64) -> Param:
    """A path parameter (an object id, a connector name)."""
    schema = {"type": "string", "minLength": 1, "maxLength": max_length}
    return Param(name, "path", schema, description, example, required=True)
