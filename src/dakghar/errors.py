"""The one error hierarchy of Dakghar.

Every error the API can answer with carries its stable ``code`` (API.md) and its HTTP status, so the
API layer maps errors to RFC 9457 problem details in exactly one place (``dakghar.api.problems``).
"""

from __future__ import annotations

from typing import Any


class DakgharError(Exception):
    """Base of every error Dakghar raises on purpose."""

    code: str = "internal_error"
    status: int = 500
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


class Unauthorized(DakgharError):
    code, status, title = "unauthorized", 401, "Unauthorized"


class Forbidden(DakgharError):
    code, status, title = "forbidden", 403, "Forbidden"


class NotFound(DakgharError):
    code, status, title = "not_found", 404, "Not found"


class Conflict(DakgharError):
    """A state conflict, e.g. cancelling a message that has already been sent."""

    code, status, title = "conflict", 409, "Conflict"


class ValidationError(DakgharError):
    code, status, title = "validation_error", 422, "Validation error"


class InvalidNumber(ValidationError):
    code, title = "invalid_number", "Invalid number"


class CountryNotAllowed(ValidationError):
    code, title = "country_not_allowed", "Country not allowed"


class BodyEmpty(ValidationError):
    code, title = "body_empty", "Body empty"


class BodyTooLong(ValidationError):
    code, title = "body_too_long", "Body too long"


class InvalidSender(ValidationError):
    code, title = "invalid_sender", "Invalid sender"


class TemplateMismatch(ValidationError):
    code, title = "template_mismatch", "Template mismatch"


class DndBlocked(ValidationError):
    code, title = "dnd_blocked", "Number on the do-not-disturb registry"


class InvalidCallbackUrl(ValidationError):
    """A callback or inbound URL Dakghar refuses to POST to (scheme, userinfo or address)."""

    code, title = "invalid_callback_url", "Invalid callback URL"


class InsufficientCredits(DakgharError):
    code, status, title = "insufficient_credits", 402, "Insufficient credits"


class RateLimited(DakgharError):
    code, status, title = "rate_limited", 429, "Rate limited"

    def __init__(self, detail: str | None = None, *, retry_after: float = 1.0) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(detail, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class IdempotencyConflict(DakgharError):
    code, status, title = "idempotency_conflict", 409, "Idempotency key reused with another body"


class PayloadTooLarge(DakgharError):
    code, status, title = "payload_too_large", 413, "Payload too large"


class SendingPaused(DakgharError):
    code, status, title = "sending_paused", 503, "Sending paused"

    @classmethod
    def everyone(cls) -> SendingPaused:
        """The global kill switch is on."""
        return cls(
            "sending is paused for everyone by the operator; try again later",
            headers={"Retry-After": "60"},
        )

    @classmethod
    def account(cls) -> SendingPaused:
        """The account's kill switch is on."""
        return cls(
            "sending is paused for this account; resume it with "
            "'dakghar accounts resume ACCOUNT_ID'",
            headers={"Retry-After": "60"},
        )


class NotReady(DakgharError):
    code, status, title = "not_ready", 503, "Not ready"
