"""Request and response shapes of the REST API, as msgspec Structs.

These Structs are the single source of truth: requests are decoded and validated with them, and
``api.openapi`` turns the same Structs into the published OpenAPI 3.1 document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Number = Annotated[str, Meta(min_length=1, max_length=64, description="Phone number, any form")]
Body = Annotated[str, Meta(max_length=10_000, description="Message text (UTF-8)")]
Sender = Annotated[str, Meta(min_length=1, max_length=20, description="Sender ID / DLT header")]
# Decoding checks only the length: the URL rules (http(s), no user:password, no loopback, private,
# link-local or own addresses) are webhooks.urls.check_callback_url's, answered with
# invalid_callback_url (API.md) rather than a generic validation_error.
CallbackUrl = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=2048,
        description="URL that receives this message's delivery webhooks; refused "
        "(`invalid_callback_url`) when not http(s), when it carries user:password, or when it "
        "points at loopback, private, link-local or the gateway's own addresses",
        extra_json_schema={"format": "uri"},
    ),
]
Reference = Annotated[str, Meta(max_length=128, description="Your reference, echoed back")]
TemplateId = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")]
Validity = Annotated[int, Meta(ge=60, le=7 * 86400, description="Seconds before it expires")]
MessageTypeName = Literal["otp", "transactional", "promotional"]
WebhookEventsName = Literal["final", "sent", "all"]


class MessageRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/messages``."""

    to: Number
    body: Body
    sender: Sender | None = None
    type: MessageTypeName = "transactional"
    template_id: TemplateId | None = None
    callback_url: CallbackUrl | None = None
    reference: Reference | None = None
    schedule_at: datetime | None = None
    validity_seconds: Validity = 86400


class BatchShared(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/messages/batch`` with one body for many numbers."""

    to: Annotated[list[Number], Meta(min_length=1, max_length=1000)]
    body: Body
    sender: Sender | None = None
    type: MessageTypeName = "transactional"
    template_id: TemplateId | None = None
    callback_url: CallbackUrl | None = None
    reference: Reference | None = None
    schedule_at: datetime | None = None
    validity_seconds: Validity = 86400


class BatchList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/messages/batch`` with one request per entry."""

    messages: Annotated[list[MessageRequest], Meta(min_length=1, max_length=1000)]


class Event(msgspec.Struct):
    """One step of a message's history."""

    status: str
    at: str
    detail: str | None


class Message(msgspec.Struct, omit_defaults=True):
    """The message object (API.md)."""

    id: str
    to: str
    sender: str | None
    type: str
    status: str
    error_code: str | None
    error_detail: str | None
    segments: int
    encoding: str
    price: float
    carrier: str | None
    region: str | None
    connector: str | None
    provider_message_id: str | None
    reference: str | None
    body: str | None
    schedule_at: str | None
    expires_at: str
    created_at: str
    submitted_at: str | None
    delivered_at: str | None
    updated_at: str
    events: list[Event] | None = None


class MessageList(msgspec.Struct):
    """A page of messages."""

    data: list[Message]
    next_cursor: str | None


class Rejection(msgspec.Struct):
    """A batch entry that was not accepted."""

    index: int
    code: str
    detail: str
    field: str | None = None


class BatchResponse(msgspec.Struct):
    """Result of a batch: one bad entry never rejects the others."""

    accepted: list[Message]
    rejected: list[Rejection]


class AccountLimits(msgspec.Struct):
    """Limits that apply to the account."""

    rate_per_second: int
    rate_burst: int
    segment_limit: int
    allowed_countries: list[str] | None


class AccountUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /v1/account``: the settings an account changes itself (null clears a URL).

    Billing fields (balance, prices, limits) are the operator's: ``dakghar accounts update``.
    """

    callback_url: CallbackUrl | msgspec.UnsetType | None = msgspec.UNSET
    inbound_url: CallbackUrl | msgspec.UnsetType | None = msgspec.UNSET
    default_sender: Sender | msgspec.UnsetType | None = msgspec.UNSET
    webhook_events: WebhookEventsName | msgspec.UnsetType = msgspec.UNSET
    smart_encoding: bool | msgspec.UnsetType = msgspec.UNSET


class WebhookSecret(msgspec.Struct):
    """``GET /v1/account/webhook-secret``: the key of ``Dakghar-Signature``; after a rotation
    the previous secret also signs until ``previous_expires_at``."""

    webhook_secret: str
    previous_expires_at: str | None


class RateLimit(msgspec.Struct):
    """The account's API rate limit (GCRA): sustained requests per second and burst."""

    per_second: int
    burst: int


class AccountView(msgspec.Struct):
    """``GET /v1/account`` (API.md "Account settings")."""

    id: str
    name: str
    balance: float
    price_per_segment: float
    default_sender: str | None
    default_region: str
    allowed_countries: list[str] | None
    segment_limit: int
    callback_url: str | None
    inbound_url: str | None
    webhook_events: WebhookEventsName
    smart_encoding: bool
    dlt_enforced: bool
    rate_limit: RateLimit
    limits: AccountLimits  # the same limits, grouped (kept for earlier clients)
    sending_paused: bool
    key_mode: str
    created_at: str


class FieldError(msgspec.Struct, omit_defaults=True):
    """One failed input inside a problem."""

    field: str
    code: str
    detail: str | None = None
    index: int | None = None


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


class Health(msgspec.Struct):
    """``/healthz`` and ``/readyz``."""

    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)
