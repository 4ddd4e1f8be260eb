"""The one exception hierarchy of the client, rooted in :class:`DakgharClientError`.

Every problem+json answer becomes an :class:`ApiError` subclass chosen by its ``code`` (the
table in API.md), so callers catch ``InvalidNumber`` rather than compare strings; a code this
version does not know still raises :class:`ApiError` with the code kept. ``_core`` builds them;
``webhooks`` adds :class:`SignatureError`.
"""

from __future__ import annotations

from typing import Any


class DakgharClientError(Exception):
    """Base of every error this package raises."""


class NetworkError(DakgharClientError):
    """The gateway could not be reached or the connection broke, after every retry."""


class ApiError(DakgharClientError):
    """The gateway answered with an error (RFC 9457 problem details)."""

    code_name: str | None = None  # the API ``code`` a subclass stands for

    def __init__(
        self,
        status: int,
        code: str | None,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code or title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after
        self.problem = problem or {}  # the whole document, extension members included


class Unauthorized(ApiError):
    code_name = "unauthorized"


class Forbidden(ApiError):
    code_name = "forbidden"


class NotFound(ApiError):
    code_name = "not_found"


class Conflict(ApiError):
    code_name = "conflict"


# A message past ``scheduled``/``queued`` cannot be canceled: the gateway answers ``conflict``.
# Earlier versions of the gateway sent a code of their own for it; the name stays for callers
# that catch it.
NotCancelable = Conflict


class IdempotencyConflict(ApiError):
    code_name = "idempotency_conflict"


class ValidationError(ApiError):
    code_name = "validation_error"


class InvalidNumber(ValidationError):
    code_name = "invalid_number"


class CountryNotAllowed(ValidationError):
    code_name = "country_not_allowed"


class BodyEmpty(ValidationError):
    code_name = "body_empty"


class BodyTooLong(ValidationError):
    code_name = "body_too_long"


class InvalidSender(ValidationError):
    code_name = "invalid_sender"


class TemplateMismatch(ValidationError):
    code_name = "template_mismatch"


class DndBlocked(ValidationError):
    code_name = "dnd_blocked"


class InvalidCallbackUrl(ValidationError):
    code_name = "invalid_callback_url"


class UnregisteredLink(ValidationError):
    code_name = "unregistered_link"


class InsufficientCredits(ApiError):
    code_name = "insufficient_credits"


class RateLimited(ApiError):
    code_name = "rate_limited"


class SendingPaused(ApiError):
    code_name = "sending_paused"


class PayloadTooLarge(ApiError):
    code_name = "payload_too_large"


ERRORS_BY_CODE: dict[str, type[ApiError]] = {
    cls.code_name: cls
    for cls in (
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        IdempotencyConflict,
        ValidationError,
        InvalidNumber,
        CountryNotAllowed,
        BodyEmpty,
        BodyTooLong,
        InvalidSender,
        TemplateMismatch,
        DndBlocked,
        InvalidCallbackUrl,
        UnregisteredLink,
        InsufficientCredits,
        RateLimited,
        SendingPaused,
        PayloadTooLarge,
    )
    if cls.code_name is not None
}


def error_for(status: int, problem: dict[str, Any], retry_after: float | None = None) -> ApiError:
    """The error for one problem document; an unknown ``code`` gives a plain :class:`ApiError`."""
    code = problem.get("code")
    code = code if isinstance(code, str) else None
    cls = ERRORS_BY_CODE.get(code or "", ApiError)
    errors = problem.get("errors")
    return cls(
        status,
        code,
        str(problem.get("title") or ""),
        str(problem.get("detail") or ""),
        errors=errors if isinstance(errors, list) else None,
        retry_after=retry_after,
        problem=problem,
    )
