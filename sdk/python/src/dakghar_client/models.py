"""Typed objects of the API (API.md), built from its JSON by each class's ``from_dict``.

Unknown fields are ignored, so a newer gateway that adds fields never breaks an older client;
timestamps become aware ``datetime`` objects. ``_core`` calls ``from_dict`` on every answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FINAL_STATUSES = frozenset(
    {"delivered", "undelivered", "expired", "rejected", "failed", "canceled"}
)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _required_time(value: Any) -> datetime:
    parsed = _time(value)
    if parsed is None:
        raise ValueError(f"expected an RFC 3339 time, got {value!r}")
    return parsed


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One step of a message's history (``events`` of ``GET /v1/messages/{id}``)."""

    status: str
    at: datetime
    detail: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MessageEvent:
        return cls(data["status"], _required_time(data["at"]), data.get("detail"))


@dataclass(frozen=True, slots=True)
class Message:
    """A message and its delivery state."""

    id: str
    to: str
    status: str
    type: str
    sender: str | None = None
    error_code: str | None = None
    error_detail: str | None = None
    segments: int = 0
    encoding: str = "GSM-7"
    price: float = 0.0
    carrier: str | None = None
    region: str | None = None
    connector: str | None = None
    provider_message_id: str | None = None
    reference: str | None = None
    body: str | None = None
    schedule_at: datetime | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    submitted_at: datetime | None = None
    delivered_at: datetime | None = None
    updated_at: datetime | None = None
    events: list[MessageEvent] | None = None  # only from ``messages.get``

    @property
    def is_final(self) -> bool:
        """True once the status can no longer change (delivered, failed, ...)."""
        return self.status in FINAL_STATUSES

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        events = data.get("events")
        return cls(
            id=data["id"],
            to=data["to"],
            status=data["status"],
            type=data.get("type", "transactional"),
            sender=data.get("sender"),
            error_code=data.get("error_code"),
            error_detail=data.get("error_detail"),
            segments=int(data.get("segments") or 0),
            encoding=data.get("encoding", "GSM-7"),
            price=float(data.get("price") or 0.0),
            carrier=data.get("carrier"),
            region=data.get("region"),
            connector=data.get("connector"),
            provider_message_id=data.get("provider_message_id"),
            reference=data.get("reference"),
            body=data.get("body"),
            schedule_at=_time(data.get("schedule_at")),
            expires_at=_time(data.get("expires_at")),
            created_at=_time(data.get("created_at")),
            submitted_at=_time(data.get("submitted_at")),
            delivered_at=_time(data.get("delivered_at")),
            updated_at=_time(data.get("updated_at")),
            events=[MessageEvent.from_dict(e) for e in events] if events is not None else None,
        )


@dataclass(frozen=True, slots=True)
class BatchRejection:
    """A batch entry that was not accepted; ``index`` points into the request."""

    index: int
    code: str
    detail: str
    field: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchRejection:
        return cls(int(data["index"]), data["code"], data.get("detail", ""), data.get("field"))


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What ``messages.send_batch`` accepted and rejected (one bad entry rejects only itself)."""

    accepted: list[Message] = field(default_factory=list)
    rejected: list[BatchRejection] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchResult:
        return cls(
            [Message.from_dict(m) for m in data.get("accepted", [])],
            [BatchRejection.from_dict(r) for r in data.get("rejected", [])],
        )


@dataclass(frozen=True, slots=True)
class Otp:
    """A verification in progress; the code itself is never part of it."""

    id: str
    to: str
    status: str
    expires_at: datetime | None = None
    resend_after: datetime | None = None
    resends_left: int = 0
    attempts_left: int = 0
    message_id: str | None = None
    created_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Otp:
        return cls(
            id=data["id"],
            to=data["to"],
            status=data["status"],
            expires_at=_time(data.get("expires_at")),
            resend_after=_time(data.get("resend_after")),
            resends_left=int(data.get("resends_left") or 0),
            attempts_left=int(data.get("attempts_left") or 0),
            message_id=data.get("message_id"),
            created_at=_time(data.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class OtpCheck:
    """The outcome of ``otp.check``."""

    id: str
    status: str  # approved | pending | expired | failed
    attempts_left: int

    @property
    def approved(self) -> bool:
        """True when the code was right."""
        return self.status == "approved"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OtpCheck:
        return cls(data["id"], data["status"], int(data.get("attempts_left") or 0))


_CAMPAIGN_COUNTS = (
    *("total", "valid", "invalid", "duplicates", "dnd_filtered"),
    *("queued", "sent", "delivered", "failed", "canceled"),
)


@dataclass(frozen=True, slots=True)
class Campaign:
    """A bulk send and its live progress."""

    id: str
    status: str
    name: str | None = None
    type: str | None = None
    sender: str | None = None
    total: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    dnd_filtered: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    canceled: int = 0
    rate_per_second: int | None = None
    schedule_at: datetime | None = None
    created_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Campaign:
        counts = {k: int(data.get(k) or 0) for k in _CAMPAIGN_COUNTS}
        return cls(
            id=data["id"],
            status=data["status"],
            name=data.get("name"),
            type=data.get("type"),
            sender=data.get("sender"),
            rate_per_second=data.get("rate_per_second"),
            schedule_at=_time(data.get("schedule_at")),
            created_at=_time(data.get("created_at")),
            **counts,
        )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The account's API rate limit: sustained requests per second and burst."""

    per_second: int
    burst: int


@dataclass(frozen=True, slots=True)
class Account:
    """``GET /v1/account``: balance, limits, defaults and webhook settings."""

    id: str
    name: str
    balance: float
    default_sender: str | None = None
    default_region: str = "IN"
    allowed_countries: list[str] | None = None
    segment_limit: int = 10
    callback_url: str | None = None
    inbound_url: str | None = None
    webhook_events: str = "final"
    smart_encoding: bool = False
    dlt_enforced: bool = False
    rate_limit: RateLimit | None = None
    price_per_segment: float | None = None
    sending_paused: bool = False
    key_mode: str | None = None  # "test" (sandbox) or "live": the mode of the calling key
    created_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Account:
        rate = data.get("rate_limit")
        return cls(
            id=data["id"],
            name=data["name"],
            balance=float(data["balance"]),
            default_sender=data.get("default_sender"),
            default_region=data.get("default_region", "IN"),
            allowed_countries=data.get("allowed_countries"),
            segment_limit=int(data.get("segment_limit") or 10),
            callback_url=data.get("callback_url"),
            inbound_url=data.get("inbound_url"),
            webhook_events=data.get("webhook_events", "final"),
            smart_encoding=bool(data.get("smart_encoding")),
            dlt_enforced=bool(data.get("dlt_enforced")),
            rate_limit=RateLimit(int(rate["per_second"]), int(rate["burst"]))
            if isinstance(rate, dict)
            else None,
            price_per_segment=data.get("price_per_segment"),
            sending_paused=bool(data.get("sending_paused")),
            key_mode=data.get("key_mode"),
            created_at=_time(data.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """The secret that signs ``Dakghar-Signature``; after a rotation the previous one also
    signs until ``previous_expires_at``."""

    webhook_secret: str
    previous_expires_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookSecret:
        return cls(data["webhook_secret"], _time(data.get("previous_expires_at")))
