"""Rendering stored rows as API objects (times as RFC 3339 UTC, money in credits)."""

from __future__ import annotations

import base64

import msgspec

from dakghar.api import schemas
from dakghar.core.times import iso
from dakghar.store.base import Account, MessageRow

encoder = msgspec.json.Encoder()
__all__ = ["credits", "encoder", "iso"]


def credits(milli: int) -> float:
    """Milli-credits as credits."""
    return milli / 1000


def message(row: MessageRow) -> schemas.Message:
    """The public message object."""
    events = None
    if row.events is not None:
        events = [schemas.Event(e.status, iso(e.at) or "", e.detail) for e in row.events]
    return schemas.Message(
        id=row.id,
        to=row.to_number,
        sender=row.sender,
        type=row.type,
        status=row.status,
        error_code=row.error_code,
        error_detail=row.error_detail,
        segments=row.segments,
        encoding=row.encoding,
        price=credits(row.price_milli),
        carrier=row.carrier,
        region=row.region,
        connector=row.connector,
        provider_message_id=row.provider_message_id,
        reference=row.reference,
        # A live OTP's code is never shown through the API; sandbox keys see it to test flows.
        body=row.redacted_body if row.redacted_body is not None and not row.sandbox else row.body,
        schedule_at=iso(row.schedule_at),
        expires_at=iso(row.expires_at) or "",
        created_at=iso(row.created_at) or "",
        submitted_at=iso(row.submitted_at),
        delivered_at=iso(row.delivered_at),
        updated_at=iso(row.updated_at) or "",
        events=events,
    )


def account(acc: Account, key_mode: str) -> schemas.AccountView:
    """The public account object."""
    allowed = acc.allowed_country_set
    return schemas.AccountView(
        id=acc.id,
        name=acc.name,
        balance=credits(acc.balance_milli),
        price_per_segment=credits(acc.price_milli_per_segment),
        default_sender=acc.default_sender,
        default_region=acc.default_region,
        allowed_countries=sorted(allowed) if allowed else None,
        segment_limit=acc.segment_limit,
        callback_url=acc.callback_url,
        inbound_url=acc.inbound_url,
        webhook_events=acc.webhook_events,  # type: ignore[arg-type]
        rate_limit=schemas.RateLimit(per_second=acc.rate_per_second, burst=acc.rate_burst),
        limits=schemas.AccountLimits(
            rate_per_second=acc.rate_per_second,
            rate_burst=acc.rate_burst,
            segment_limit=acc.segment_limit,
            allowed_countries=sorted(allowed) if allowed else None,
        ),
        smart_encoding=acc.smart_encoding,
        dlt_enforced=acc.dlt_enforced,
        sending_paused=acc.sending_paused,
        key_mode=key_mode,
        created_at=iso(acc.created_at) or "",
    )


def encode_cursor(message_id: str) -> str:
    """An opaque cursor for the page after ``message_id``."""
    return base64.urlsafe_b64encode(message_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    """The message id inside a cursor, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return raw if raw.startswith("msg_") and len(raw) <= 40 and raw.isascii() else None
