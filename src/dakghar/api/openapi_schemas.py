"""The hand-written parts of the OpenAPI document: schemas no Struct describes, shared parameters,
example objects, and the catalogue of problem ``code``s with an example problem for each.

The Structs in ``api.schemas`` and ``api.otp_schemas`` stay the source of the component schemas;
what is here covers answers built as plain dicts (campaigns, stats, switches) and the examples.
The handler modules import these to declare their endpoints (``api.endpoint``).
"""

from __future__ import annotations

from typing import Any

from dakghar import errors
from dakghar.api import otp_schemas, schemas
from dakghar.api.endpoint import Param

STRUCTS = (
    schemas.MessageRequest,
    schemas.BatchShared,
    schemas.BatchList,
    schemas.Message,
    schemas.MessageList,
    schemas.BatchResponse,
    schemas.AccountView,
    schemas.AccountUpdate,
    schemas.WebhookSecret,
    otp_schemas.OtpSendRequest,
    otp_schemas.OtpCheckRequest,
    otp_schemas.Otp,
    otp_schemas.OtpCheckResult,
    schemas.Problem,
    schemas.Health,
)

IDEMPOTENCY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "Same key + same body within 24 h returns the first response and creates nothing",
    "order-123-sms",
)

# The problem codes each kind of call can answer with, beyond 401 and 429 (added to every call).
CREATES = ("idempotency_conflict", "payload_too_large", "validation_error", "sending_paused")
ACCEPT_CHECKS = (
    "invalid_number", "country_not_allowed", "body_empty", "body_too_long", "invalid_sender",
    "template_mismatch", "dnd_blocked", "invalid_callback_url", "unregistered_link",
    "insufficient_credits",
)  # fmt: skip

_DETAILS = {
    "unauthorized": "unknown or revoked API key",
    "forbidden": "this call needs a key with the 'admin' scope (dakghar keys create --admin)",
    "not_found": "no message msg_01a23405b2cfed966afb03ef7f6f for this account",
    "conflict": "campaign is completed; it cannot be paused",
    "validation_error": "Object missing required field `to`",
    "invalid_number": "Number is too short.",
    "country_not_allowed": "destination country US is not enabled for this account",
    "body_empty": "the message body is empty",
    "body_too_long": "the body needs 12 segments; this account allows at most 10",
    "invalid_sender": "sender 'ACMEIN' is not registered for this account",
    "template_mismatch": "the body matches no approved DLT template for sender DKGHAR",
    "dnd_blocked": "+917000000004 is on the do-not-disturb registry; promotional refused",
    "invalid_callback_url": "callback_url points at a private address",
    "unregistered_link": "https://bit.ly/x is not whitelisted for template 1107161234567890",
    "insufficient_credits": "balance 0.5 cannot cover 1 segment at 1.0",
    "rate_limited": "rate limit of 200 requests per second reached",
    "idempotency_conflict": "Idempotency-Key order-123-sms was used with another body",
    "payload_too_large": "request body is larger than 1048576 bytes",
    "sending_paused": "sending is paused for this account; resume it with "
    "'dakghar accounts resume ACCOUNT_ID'",
    "not_ready": "not ready: connectors down",
}
_CLASSES: tuple[type[errors.DakgharError], ...] = (
    errors.Unauthorized, errors.Forbidden, errors.NotFound, errors.Conflict,
    errors.ValidationError, errors.InvalidNumber, errors.CountryNotAllowed, errors.BodyEmpty,
    errors.BodyTooLong, errors.InvalidSender, errors.TemplateMismatch, errors.DndBlocked,
    errors.InvalidCallbackUrl, errors.InsufficientCredits, errors.RateLimited,
    errors.IdempotencyConflict, errors.PayloadTooLarge, errors.SendingPaused, errors.NotReady,
)  # fmt: skip
# Codes API.md names that no error class carries yet, or whose class lives below the API layer.
_OTHERS = {
    "unregistered_link": (422, "Unregistered link"),
}
ERROR_STATUS_TITLE: dict[str, tuple[int, str]] = {
    **{c.code: (c.status, c.title) for c in _CLASSES},
    **_OTHERS,
}


def problem_example(code: str) -> dict[str, Any]:
    """An RFC 9457 problem as ``api.problems`` answers it for ``code``."""
    status, title = ERROR_STATUS_TITLE[code]
    body: dict[str, Any] = {
        "type": f"urn:dakghar:error:{code}",
        "title": title,
        "status": status,
        "detail": _DETAILS[code],
        "code": code,
    }
    if code == "validation_error":
        body["errors"] = [{"field": "$", "code": code, "detail": _DETAILS[code]}]
    return body


MESSAGE: dict[str, Any] = {
    "id": "msg_01a23405b2cfed966afb03ef7f6f", "to": "+919812345678", "sender": "DKGHAR",
    "type": "transactional", "status": "queued", "error_code": None, "error_detail": None,
    "segments": 1, "encoding": "GSM-7", "price": 1.0, "carrier": "Vi", "region": None,
    "connector": None, "provider_message_id": None, "reference": "order-123",
    "body": "Your order 123 has shipped", "schedule_at": None,
    "expires_at": "2026-12-02T23:51:58.385Z", "created_at": "2026-12-01T23:51:58.385Z",
    "submitted_at": None, "delivered_at": None, "updated_at": "2026-12-01T23:51:58.385Z",
}  # fmt: skip
DELIVERED = {
    **MESSAGE, "status": "delivered", "connector": "simulator",
    "provider_message_id": "d9f4589662", "submitted_at": "2026-12-01T23:51:58.442Z",
    "delivered_at": "2026-12-01T23:51:59.240Z", "updated_at": "2026-12-01T23:51:59.240Z",
    "events": [
        {"status": "queued", "at": "2026-12-01T23:51:58.385Z", "detail": "accepted"},
        {"status": "sending", "at": "2026-12-01T23:51:58.431Z", "detail": None},
        {"status": "sent", "at": "2026-12-01T23:51:58.442Z", "detail": None},
        {"status": "delivered", "at": "2026-12-01T23:51:59.240Z", "detail": None},
    ],
}  # fmt: skip
ACCOUNT: dict[str, Any] = {
    "id": "acc_01a23405967a0640a3d9faeaae76", "name": "demo", "balance": 1000.0,
    "price_per_segment": 1.0, "default_sender": "DKGHAR", "default_region": "IN",
    "allowed_countries": None, "segment_limit": 10, "callback_url": None, "inbound_url": None,
    "webhook_events": "final", "smart_encoding": False, "dlt_enforced": False,
    "rate_limit": {"per_second": 200, "burst": 400},
    "limits": {"rate_per_second": 200, "rate_burst": 400, "segment_limit": 10,
               "allowed_countries": None},
    "sending_paused": False, "key_mode": "test", "created_at": "2026-12-01T23:51:51.162Z",
}  # fmt: skip
OTP: dict[str, Any] = {
    "id": "otp_01a23405ce8738b09c2132f8b81a", "to": "+919812345678", "status": "pending",
    "expires_at": "2026-12-01T23:57:05.511Z", "resend_after": "2026-12-01T23:52:35.511Z",
    "resends_left": 3, "attempts_left": 5, "message_id": "msg_01a23405ce8813f5c039f3c89471",
    "created_at": "2026-12-01T23:52:05.511Z",
}  # fmt: skip
CAMPAIGN: dict[str, Any] = {
    "id": "cmp_01a23405bf10061fddaf47486049", "name": "diwali", "status": "running",
    "type": "promotional", "sender": "DKGHAR", "total": 2, "valid": 2, "invalid": 0,
    "duplicates": 0, "dnd_filtered": 0, "queued": 2, "sent": 0, "delivered": 0, "failed": 0,
    "canceled": 0, "rate_per_second": None, "schedule_at": None,
    "created_at": "2026-12-01T23:52:01.552Z",
}  # fmt: skip
SWITCHES_EXAMPLE = {"paused": {"account": ["acc_01a23405967a0640a3d9faeaae76"]}}

_CAMPAIGN_COUNTS = (
    "total", "valid", "invalid", "duplicates", "dnd_filtered",
    "queued", "sent", "delivered", "failed", "canceled",
)  # fmt: skip
CAMPAIGN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "status", *_CAMPAIGN_COUNTS],
    "properties": {
        "id": {"type": "string", "examples": ["cmp_019abc3f2e10a1b2c3d4e5f60718"]},
        "name": {"type": ["string", "null"]},
        "status": {
            "enum": [
                "ingesting",
                "scheduled",
                "running",
                "paused",
                "completed",
                "canceled",
                "failed",
            ],
            "description": (
                "ingesting: the upload is received and its rows are being validated and written "
                "in the background (the counts grow; none of its messages is sent yet); then "
                "scheduled or running. failed: the ingest could not finish (a malformed CSV, a "
                "crash); none of its messages is sent and all are refunded. completed, canceled "
                "and failed are final: pause, resume and cancel answer 409 conflict."
            ),
        },
        "type": {"enum": ["promotional", "transactional"]},
        "sender": {"type": ["string", "null"]},
        **{k: {"type": "integer", "minimum": 0} for k in _CAMPAIGN_COUNTS},
        "rate_per_second": {"type": ["integer", "null"]},
        "schedule_at": {"type": ["string", "null"], "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
CAMPAIGN_UPLOAD: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "contentMediaType": "text/csv",
            "description": "Header row with 'phone' and variables",
        },
        "name": {"type": "string"},
        "sender": {"type": "string"},
        "body": {"type": "string", "description": "Text with {column} placeholders"},
        "template_id": {"type": "string"},
        "type": {"enum": ["promotional", "transactional"]},
        "schedule_at": {"type": "string", "format": "date-time"},
        "rate_per_second": {"type": "integer", "minimum": 1},
    },
}
STATS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data", "group_by"],
    "properties": {
        "group_by": {"type": "string"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "submitted", "delivered", "failed"],
                "properties": {
                    "key": {"type": "string"},
                    "submitted": {"type": "integer"},
                    "delivered": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "delivery_rate": {"type": ["number", "null"]},
                    "p50_delivery_seconds": {"type": ["number", "null"]},
                },
            },
        },
    },
}
SWITCHES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"paused": {"type": "object"}},
    "required": ["paused"],
}
