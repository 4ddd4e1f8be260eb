"""``/v1/messages``: send, batch, read, list and cancel messages."""

from __future__ import annotations

from datetime import datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dakghar.api import openapi_schemas as spec
from dakghar.api import render, schemas
from dakghar.api.endpoint import Body, Endpoint, Reply, documented, path_param, query
from dakghar.api.services import (
    DECODE_ERRORS,
    JSON,
    Services,
    decode_error,
    decode_json,
    idempotency_key,
    read_body,
    replay,
    request_hash,
    services,
)
from dakghar.core.message import Status
from dakghar.core.numbers import parse_number
from dakghar.errors import (
    DakgharError,
    InsufficientCredits,
    InvalidCallbackUrl,
    NotFound,
    ValidationError,
)
from dakghar.pipeline.accept import Draft
from dakghar.store.base import AcceptOutcome, MessageFilter

_message_decoder = msgspec.json.Decoder(schemas.MessageRequest)
_shared_decoder = msgspec.json.Decoder(schemas.BatchShared)
_envelope_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_encoder = render.encoder
MAX_BATCH = 1000


def _draft(req: schemas.MessageRequest | schemas.BatchShared, to: str) -> Draft:
    return Draft(
        to=to,
        body=req.body,
        sender=req.sender,
        type=req.type,
        template_id=req.template_id,
        callback_url=req.callback_url,
        reference=req.reference,
        schedule_at=req.schedule_at,
        validity_seconds=req.validity_seconds,
    )


_TAG = "Messages"
_MESSAGE_ID = path_param("message_id", "The message id (msg_...)", spec.MESSAGE["id"])
_MESSAGE_REQUEST = {
    "to": "+919812345678", "body": "Your order 123 has shipped", "sender": "DKGHAR",
    "type": "transactional", "reference": "order-123",
}  # fmt: skip
_STATUSES = [s.value for s in Status]


@documented(
    Endpoint(
        tag=_TAG,
        summary="Send a message",
        operation_id="sendMessage",
        description="Accepted messages are queued (or scheduled) and answered at once with "
        "status `queued`; delivery webhooks follow. Sandbox keys reach only the simulated "
        "carrier (magic numbers `+917000000001`... choose an outcome).",
        params=(spec.IDEMPOTENCY,),
        body=Body("MessageRequest", _MESSAGE_REQUEST),
        replies={202: Reply("Accepted and queued (or scheduled)", "Message", spec.MESSAGE)},
        errors=(*spec.ACCEPT_CHECKS, *spec.CREATES),
    )
)
async def send_message(request: Request) -> Response:
    """``POST /v1/messages``."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    body = await read_body(request, svc.settings.api.max_body_bytes)
    key = idempotency_key(request)
    digest = request_hash(request, body) if key else None
    if key and digest:
        earlier = await svc.store.get_idempotency(caller.account.id, key)
        if earlier is not None:
            return replay(earlier, digest)
    req: schemas.MessageRequest = decode_json(_message_decoder, body)
    svc.check_callback(req.callback_url)
    svc.acceptor.check_open(caller.account)
    await svc.acceptor.prepare(caller.account)
    rows, failed = svc.acceptor.build_many(
        [_draft(req, req.to)], caller.account, sandbox=caller.sandbox
    )
    if failed:
        raise failed[0][1]

    def rendered(outcome: AcceptOutcome) -> tuple[int, str] | None:
        if not outcome.accepted:
            return None
        return 202, _encoder.encode(render.message(outcome.accepted[0])).decode()

    outcome = await svc.acceptor.write(
        caller.account,
        [r for _, r in rows],
        sandbox=caller.sandbox,
        idempotency_key=key,
        request_hash=digest,
        render=rendered,
    )
    if outcome.replay is not None and digest:
        return replay(outcome.replay, digest)
    if not outcome.accepted:
        raise InsufficientCredits(
            f"balance {render.credits(outcome.balance_milli)} cannot cover "
            f"{render.credits(rows[0][1].price_milli)} credits"
        )
    return Response(
        _encoder.encode(render.message(outcome.accepted[0])), status_code=202, media_type=JSON
    )


def _batch_drafts(svc: Services, body: bytes) -> list[Draft | DakgharError]:
    envelope: dict[str, msgspec.Raw] = decode_json(_envelope_decoder, body)
    if "messages" in envelope:
        if set(envelope) != {"messages"}:
            extra = sorted(set(envelope) - {"messages"})
            raise ValidationError(f"unexpected fields beside 'messages': {extra}")
        entries: list[msgspec.Raw] = decode_json(_list_decoder, bytes(envelope["messages"]))
        if not entries or len(entries) > MAX_BATCH:
            raise ValidationError(f"'messages' must hold 1 to {MAX_BATCH} entries")
        drafts: list[Draft | DakgharError] = []
        for raw in entries:
            try:
                req = _message_decoder.decode(bytes(raw))
            except DECODE_ERRORS as exc:
                drafts.append(decode_error(exc))
            else:
                try:
                    svc.check_callback(req.callback_url)
                except InvalidCallbackUrl as exc:
                    drafts.append(exc)  # this entry alone is rejected
                else:
                    drafts.append(_draft(req, req.to))
        return drafts
    if "to" in envelope:
        shared: schemas.BatchShared = decode_json(_shared_decoder, body)
        svc.check_callback(shared.callback_url)  # shared by every entry: the batch is refused
        return [_draft(shared, to) for to in shared.to]
    raise ValidationError("send either {'messages': [...]} or {'to': [...], 'body': ...}")


@documented(
    Endpoint(
        tag=_TAG,
        summary="Send up to 1,000 messages; bad entries are rejected one by one",
        operation_id="sendBatch",
        params=(spec.IDEMPOTENCY,),
        body=Body(
            {
                "oneOf": [
                    {"$ref": "#/components/schemas/BatchList"},
                    {"$ref": "#/components/schemas/BatchShared"},
                ]
            },
            examples={
                "one body, many numbers": {"to": ["+919812345678", "123"], "body": "Sale today"},
                "one request per entry": {"messages": [_MESSAGE_REQUEST]},
            },
        ),
        replies={
            202: Reply(
                "Accepted and rejected entries",
                "BatchResponse",
                {
                    "accepted": [spec.MESSAGE],
                    "rejected": [
                        {
                            "index": 1,
                            "code": "invalid_number",
                            "detail": "Number is too short.",
                            "field": None,
                        }
                    ],
                },
            )
        },
        errors=spec.CREATES,
    )
)
async def send_batch(request: Request) -> Response:
    """``POST /v1/messages/batch``: one bad entry never rejects the others."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    body = await read_body(request, svc.settings.api.max_body_bytes)
    key = idempotency_key(request)
    digest = request_hash(request, body) if key else None
    if key and digest:
        earlier = await svc.store.get_idempotency(caller.account.id, key)
        if earlier is not None:
            return replay(earlier, digest)
    drafts = _batch_drafts(svc, body)
    svc.acceptor.check_open(caller.account)
    await svc.acceptor.prepare(caller.account)
    rows, failed = svc.acceptor.build_many(drafts, caller.account, sandbox=caller.sandbox)

    def response(outcome: AcceptOutcome) -> schemas.BatchResponse:
        rejected = [_rejection(i, exc) for i, exc in failed]
        for pos in outcome.no_credit:
            rejected.append(
                schemas.Rejection(
                    rows[pos][0], "insufficient_credits", "balance cannot cover this message"
                )
            )
        rejected.sort(key=lambda r: r.index)
        return schemas.BatchResponse([render.message(m) for m in outcome.accepted], rejected)

    def rendered(outcome: AcceptOutcome) -> tuple[int, str] | None:
        return 202, _encoder.encode(response(outcome)).decode()

    outcome = await svc.acceptor.write(
        caller.account,
        [r for _, r in rows],
        sandbox=caller.sandbox,
        idempotency_key=key,
        request_hash=digest,
        render=rendered,
    )
    if outcome.replay is not None and digest:
        return replay(outcome.replay, digest)
    return Response(_encoder.encode(response(outcome)), status_code=202, media_type=JSON)


def _rejection(index: int, exc: DakgharError) -> schemas.Rejection:
    field = None
    if exc.errors:
        field = exc.errors[0].get("field")
    return schemas.Rejection(index, exc.code, exc.detail, field)


@documented(
    Endpoint(
        tag=_TAG,
        summary="A message with its event history",
        operation_id="getMessage",
        params=(_MESSAGE_ID,),
        replies={200: Reply("The message", "Message", spec.DELIVERED)},
        errors=("not_found",),
    )
)
async def get_message(request: Request) -> Response:
    """``GET /v1/messages/{id}`` with its event history."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    message_id = request.path_params["message_id"]
    row = await svc.store.get_message(caller.account.id, message_id, with_events=True)
    if row is None:
        raise NotFound(f"no message {message_id!r} on this account")
    return Response(_encoder.encode(render.message(row)), media_type=JSON)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationError(
            f"{name} must be an integer from {low} to {high}",
            errors=[{"field": name, "code": "validation_error"}],
        )
    return int(raw)


def _time_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationError(
            f"{name} must be an RFC 3339 time with a zone, e.g. 2026-11-24T10:00:00Z",
            errors=[{"field": name, "code": "validation_error"}],
        )
    return int(value.timestamp() * 1000)


@documented(
    Endpoint(
        tag=_TAG,
        summary="List messages, newest first",
        operation_id="listMessages",
        params=(
            query("status", {"type": "string", "enum": _STATUSES}, "Filter by status", "delivered"),
            query("to", {"type": "string", "maxLength": 64}, "Filter by number", "+919812345678"),
            query("reference", {"type": "string", "maxLength": 128}, "Your reference", "order-123"),
            query("since", {"type": "string", "format": "date-time"}, "Created at >="),
            query("until", {"type": "string", "format": "date-time"}, "Created at <"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size", 50),
            query("cursor", {"type": "string"}, "next_cursor of the previous page"),
        ),
        replies={
            200: Reply(
                "A page of messages", "MessageList", {"data": [spec.MESSAGE], "next_cursor": None}
            )
        },
        errors=("validation_error", "invalid_number"),
    )
)
async def list_messages(request: Request) -> Response:
    """``GET /v1/messages?status=&to=&reference=&since=&until=&limit=&cursor=``."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    q = request.query_params
    limit = _int_param(request, "limit", 50, 1, 1000)
    status = q.get("status")
    if status is not None and status not in Status.__members__.values():
        raise ValidationError(
            f"unknown status {status!r}", errors=[{"field": "status", "code": "validation_error"}]
        )
    to = q.get("to")
    if to is not None:
        to = parse_number(to, default_region=caller.account.default_region).e164
    after_id = None
    if q.get("cursor"):
        after_id = render.decode_cursor(q["cursor"])
        if after_id is None:
            raise ValidationError(
                "cursor is not valid", errors=[{"field": "cursor", "code": "validation_error"}]
            )
    flt = MessageFilter(
        status=status,
        to_number=to,
        reference=q.get("reference"),
        since=_time_param(request, "since"),
        until=_time_param(request, "until"),
    )
    rows = await svc.store.list_messages(caller.account.id, flt, limit=limit + 1, after_id=after_id)
    more = len(rows) > limit
    rows = rows[:limit]
    page = schemas.MessageList(
        [render.message(r) for r in rows],
        render.encode_cursor(rows[-1].id) if more and rows else None,
    )
    return Response(_encoder.encode(page), media_type=JSON)


@documented(
    Endpoint(
        tag=_TAG,
        summary="Cancel a scheduled or queued message (credits refunded)",
        operation_id="cancelMessage",
        params=(_MESSAGE_ID,),
        replies={
            200: Reply(
                "The canceled message",
                "Message",
                {**spec.MESSAGE, "status": "canceled", "error_code": "canceled"},
            )
        },
        errors=("not_found", "conflict"),
    )
)
async def cancel_message(request: Request) -> Response:
    """``POST /v1/messages/{id}/cancel``: only while scheduled or queued."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    row = await svc.store.cancel_message(caller.account.id, request.path_params["message_id"])
    return Response(_encoder.encode(render.message(row)), media_type=JSON)


routes = [
    Route("/v1/messages", send_message, methods=["POST"]),
    Route("/v1/messages", list_messages, methods=["GET"]),
    Route("/v1/messages/batch", send_batch, methods=["POST"]),
    Route("/v1/messages/{message_id}", get_message, methods=["GET"]),
    Route("/v1/messages/{message_id}/cancel", cancel_message, methods=["POST"]),
]
