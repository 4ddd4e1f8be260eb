"""Every API call as a function that returns an :class:`Operation` (no I/O here).

Each public method of ``Client`` and ``AsyncClient`` is one of these functions bound to a
face (``_faces.bind``), so a call's signature, defaults, body and idempotency rules are written
once. Creating calls take ``idempotency_key`` and make one when it is not given; it is made
here, once per logical call, so every retry of that call carries the same key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from dakghar_client._core import Operation, Page, new_idempotency_key, pager
from dakghar_client.models import (
    Account,
    BatchResult,
    Campaign,
    Message,
    Otp,
    OtpCheck,
    WebhookSecret,
)

When = datetime | str
CampaignFile = str | os.PathLike[str] | bytes | IO[bytes]


def _when(value: When | None) -> str | None:
    """RFC 3339 text; a naive datetime is taken as UTC."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that were given: None means "the account's default", so it is left out."""
    return {k: v for k, v in fields.items() if v is not None}


def _id(value: str) -> str:
    return quote(value, safe="")


def _message(response: httpx.Response) -> Message:
    return Message.from_dict(response.json())


def send_message(
    *,
    to: str,
    body: str,
    sender: str | None = None,
    type: str | None = None,
    template_id: str | None = None,
    callback_url: str | None = None,
    reference: str | None = None,
    schedule_at: When | None = None,
    validity_seconds: int | None = None,
    idempotency_key: str | None = None,
) -> Operation[Message]:
    """Send one message (``POST /v1/messages``); answers as soon as it is queued."""
    payload = _given(
        to=to,
        body=body,
        sender=sender,
        type=type,
        template_id=template_id,
        callback_url=callback_url,
        reference=reference,
        schedule_at=_when(schedule_at),
        validity_seconds=validity_seconds,
    )
    key = idempotency_key or new_idempotency_key()
    return Operation("POST", "/v1/messages", _message, json=payload, idempotency_key=key)


def _entry(message: Mapping[str, Any]) -> dict[str, Any]:
    entry = _given(**message)
    if "schedule_at" in entry:
        entry["schedule_at"] = _when(entry["schedule_at"])
    return entry


def send_batch(
    messages: Sequence[Mapping[str, Any]] | None = None,
    *,
    to: Sequence[str] | None = None,
    body: str | None = None,
    sender: str | None = None,
    type: str | None = None,
    template_id: str | None = None,
    callback_url: str | None = None,
    reference: str | None = None,
    schedule_at: When | None = None,
    validity_seconds: int | None = None,
    idempotency_key: str | None = None,
) -> Operation[BatchResult]:
    """Send up to 1,000 messages at once: ``messages`` (one dict per message, the fields of
    ``send``) or one ``body`` to many ``to`` numbers with shared fields."""
    if (messages is None) == (to is None):
        raise ValueError("give either messages=[...] or to=[...] with body=...")
    if messages is not None:
        payload: dict[str, Any] = {"messages": [_entry(m) for m in messages]}
    else:
        if body is None:
            raise ValueError("to=[...] needs body=...")
        payload = _given(
            to=list(to or []),
            body=body,
            sender=sender,
            type=type,
            template_id=template_id,
            callback_url=callback_url,
            reference=reference,
            schedule_at=_when(schedule_at),
            validity_seconds=validity_seconds,
        )
    key = idempotency_key or new_idempotency_key()
    return Operation(
        "POST",
        "/v1/messages/batch",
        lambda r: BatchResult.from_dict(r.json()),
        json=payload,
        idempotency_key=key,
    )


def get_message(id: str) -> Operation[Message]:
    """One message with its ``events`` history."""
    return Operation("GET", f"/v1/messages/{_id(id)}", _message)


def list_messages(
    *,
    status: str | None = None,
    to: str | None = None,
    reference: str | None = None,
    since: When | None = None,
    until: When | None = None,
    limit: int | None = None,
) -> Operation[Page[Message]]:
    """Messages newest first; ``limit`` is the page size (the iterator follows every page)."""
    params = _given(
        status=status,
        to=to,
        reference=reference,
        since=_when(since),
        until=_when(until),
        limit=str(limit) if limit is not None else None,
    )
    return pager("/v1/messages", params, Message.from_dict)


def cancel_message(id: str) -> Operation[Message]:
    """Cancel a message that is still ``scheduled`` or ``queued`` (else ``Conflict``)."""
    # Not replayed after a lost answer: a second cancel of a canceled message is a 409 that
    # would hide the first one's success.
    return Operation("POST", f"/v1/messages/{_id(id)}/cancel", _message, replayable=False)


def _otp(response: httpx.Response) -> Otp:
    return Otp.from_dict(response.json())


def send_otp(
    *,
    to: str,
    sender: str | None = None,
    template: str | None = None,
    template_id: str | None = None,
    length: int | None = None,
    ttl_seconds: int | None = None,
    idempotency_key: str | None = None,
) -> Operation[Otp]:
    """Start a verification: the gateway makes a code and sends it (``POST /v1/otp``)."""
    payload = _given(
        to=to,
        sender=sender,
        template=template,
        template_id=template_id,
        length=length,
        ttl_seconds=ttl_seconds,
    )
    key = idempotency_key or new_idempotency_key()
    return Operation("POST", "/v1/otp", _otp, json=payload, idempotency_key=key)


def check_otp(*, code: str, id: str | None = None, to: str | None = None) -> Operation[OtpCheck]:
    """Check the code the user typed, by verification ``id`` or by number ``to``."""
    if (id is None) == (to is None):
        raise ValueError("give either id=... or to=...")
    # A retried wrong code would cost the user a second attempt: never replayed.
    return Operation(
        "POST",
        "/v1/otp/check",
        lambda r: OtpCheck.from_dict(r.json()),
        json=_given(code=code, id=id, to=to),
        replayable=False,
    )


def resend_otp(id: str, *, idempotency_key: str | None = None) -> Operation[Otp]:
    """A new code in a new message (``RateLimited`` before ``resend_after``)."""
    return Operation(
        "POST",
        f"/v1/otp/{_id(id)}/resend",
        _otp,
        idempotency_key=idempotency_key or new_idempotency_key(),
        replayable=False,  # the gateway does not deduplicate resends: one lost answer, one code
    )


def _file_part(file: CampaignFile, filename: str | None) -> tuple[str, bytes, str]:
    """The CSV as bytes, read once so that a retry sends the same upload."""
    if isinstance(file, bytes):
        content, name = file, "recipients.csv"
    elif isinstance(file, str | os.PathLike):
        path = Path(file)
        content, name = path.read_bytes(), path.name
    else:
        content = file.read()
        name = Path(str(getattr(file, "name", "recipients.csv"))).name
    return (filename or name, content, "text/csv")


def _campaign(response: httpx.Response) -> Campaign:
    return Campaign.from_dict(response.json())


def create_campaign(
    file: CampaignFile,
    *,
    name: str | None = None,
    body: str | None = None,
    sender: str | None = None,
    template_id: str | None = None,
    type: str | None = None,
    schedule_at: When | None = None,
    rate_per_second: int | None = None,
    filename: str | None = None,
    idempotency_key: str | None = None,
) -> Operation[Campaign]:
    """Upload a CSV (header row with ``phone`` and template columns) as a campaign."""
    fields = _given(
        name=name,
        body=body,
        sender=sender,
        template_id=template_id,
        type=type,
        schedule_at=_when(schedule_at),
        rate_per_second=str(rate_per_second) if rate_per_second is not None else None,
    )
    return Operation(
        "POST",
        "/v1/campaigns",
        _campaign,
        data=fields,
        files={"file": _file_part(file, filename)},
        idempotency_key=idempotency_key or new_idempotency_key(),
        replayable=False,  # campaigns are not deduplicated by the gateway
    )


def get_campaign(id: str) -> Operation[Campaign]:
    """A campaign's live progress."""
    return Operation("GET", f"/v1/campaigns/{_id(id)}", _campaign)


def pause_campaign(id: str) -> Operation[Campaign]:
    """Stop sending a running campaign's remaining messages until ``resume``."""
    return Operation("POST", f"/v1/campaigns/{_id(id)}/pause", _campaign, replayable=False)


def resume_campaign(id: str) -> Operation[Campaign]:
    """Carry on a paused campaign."""
    return Operation("POST", f"/v1/campaigns/{_id(id)}/resume", _campaign, replayable=False)


def cancel_campaign(id: str) -> Operation[Campaign]:
    """Cancel every message of the campaign not yet sent."""
    return Operation("POST", f"/v1/campaigns/{_id(id)}/cancel", _campaign, replayable=False)


def campaign_report(id: str) -> Operation[str]:
    """The campaign's CSV report (phone, status, error_code, message_id per recipient)."""
    return Operation("GET", f"/v1/campaigns/{_id(id)}/report.csv", lambda r: r.text)


def _account(response: httpx.Response) -> Account:
    return Account.from_dict(response.json())


def get_account() -> Operation[Account]:
    """The calling key's account: balance, limits, defaults."""
    return Operation("GET", "/v1/account", _account)


def update_account(
    *,
    callback_url: str | None = None,
    inbound_url: str | None = None,
    default_sender: str | None = None,
    webhook_events: str | None = None,
    smart_encoding: bool | None = None,
) -> Operation[Account]:
    """Change the settings given (``PATCH /v1/account``); the others stay as they are."""
    payload = _given(
        callback_url=callback_url,
        inbound_url=inbound_url,
        default_sender=default_sender,
        webhook_events=webhook_events,
        smart_encoding=smart_encoding,
    )
    return Operation("PATCH", "/v1/account", _account, json=payload)


def get_webhook_secret() -> Operation[WebhookSecret]:
    """The secret that signs this account's webhooks (for ``webhooks.verify``)."""
    return Operation(
        "GET", "/v1/account/webhook-secret", lambda r: WebhookSecret.from_dict(r.json())
    )


def rotate_webhook_secret() -> Operation[WebhookSecret]:
    """A new webhook secret; the old one keeps signing beside it for 24 h."""
    # Not replayed: a second rotation would push the previous secret out early.
    return Operation(
        "POST",
        "/v1/account/webhook-secret/rotate",
        lambda r: WebhookSecret.from_dict(r.json()),
        replayable=False,
    )
