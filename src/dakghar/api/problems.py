"""RFC 9457 problem details: the one place errors become HTTP answers."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dakghar.errors import DakgharError, ValidationError

PROBLEM_TYPE = "application/problem+json"
_encoder = msgspec.json.Encoder()

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:dakghar:error:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return Response(
        _encoder.encode(body), status_code=status, media_type=PROBLEM_TYPE, headers=headers
    )


def from_error(exc: DakgharError) -> Response:
    """The problem response for one of our errors."""
    return problem_response(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


def validation_from_msgspec(
    exc: msgspec.ValidationError | msgspec.DecodeError | UnicodeDecodeError,
) -> ValidationError:
    """Turn a msgspec decode/validation message into our validation error with a field path."""
    if isinstance(exc, UnicodeDecodeError):
        detail = "request body is not valid UTF-8"
        return ValidationError(detail, errors=[{"field": "$", "code": "validation_error"}])
    text = str(exc)
    field = ""
    if " - at `$" in text:
        text, _, path = text.partition(" - at `$")
        field = path.rstrip("`").lstrip(".")
    errors = [{"field": field or "$", "code": "validation_error", "detail": text}]
    detail = f"{field}: {text}" if field else text
    return ValidationError(detail, errors=errors)


async def handle_dakghar_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for :class:`DakgharError`."""
    assert isinstance(exc, DakgharError)
    return from_error(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own HTTP errors (404 for unknown paths, 405, ...) as problems."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return problem_response(
        exc.status_code,
        code,
        code.replace("_", " ").capitalize(),
        str(exc.detail),
        headers=dict(exc.headers or {}),
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Anything unexpected: a 500 problem that names no internals (the log has the trace)."""
    return problem_response(500, "internal_error", "Internal error", "an unexpected error occurred")
