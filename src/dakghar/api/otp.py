"""``/v1/otp``: start a verification, resend its code, check a code (API.md "OTP").

Handlers decode with the Structs of ``api.otp_schemas`` and leave every rule to
:class:`dakghar.otp.OtpService`, which lives on the app's services (``Services.otp``).
"""

from __future__ import annotations

from typing import cast

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dakghar.api import openapi_schemas as spec
from dakghar.api import otp_schemas, render
from dakghar.api.endpoint import Body, Endpoint, Reply, documented, path_param
from dakghar.api.services import (
    JSON,
    Services,
    decode_json,
    idempotency_key,
    read_body,
    replay,
    request_hash,
    services,
)
from dakghar.otp import OtpRequest, OtpService
from dakghar.otp.templates import DEFAULT_TEMPLATE
from dakghar.store.base import OtpVerification

_send_decoder = msgspec.json.Decoder(otp_schemas.OtpSendRequest)
_check_decoder = msgspec.json.Decoder(otp_schemas.OtpCheckRequest)
_encoder = render.encoder


def otp_service(svc: Services) -> OtpService:
    """The app's OTP service (built by the composition root, ``dakghar.gateway``)."""
    return svc.otp


def view(otp: OtpVerification, max_resends: int) -> otp_schemas.Otp:
    """The public verification object."""
    return otp_schemas.Otp(
        id=otp.id,
        to=otp.to_number,
        status=cast(otp_schemas.OtpStatus, otp.status),
        expires_at=render.iso(otp.expires_at) or "",
        resend_after=render.iso(otp.resend_after),
        resends_left=max(0, max_resends - otp.resends),
        attempts_left=otp.attempts_left,
        message_id=otp.message_id,
        created_at=render.iso(otp.created_at) or "",
    )


def _json(obj: msgspec.Struct, status: int = 200) -> Response:
    return Response(_encoder.encode(obj), status_code=status, media_type=JSON)


_TAG = "OTP"


@documented(
    Endpoint(
        tag=_TAG,
        summary="Send a one-time code on the OTP lane",
        operation_id="sendOtp",
        description="The code itself is never returned or logged; only sandbox keys see the "
        "OTP message's body in full (GET /v1/messages/{message_id}).",
        params=(spec.IDEMPOTENCY,),
        body=Body(
            "OtpSendRequest",
            {
                "to": "+919812345678",
                "template": "Your code is {code}. Valid for {minutes} min.",
                "length": 6,
                "ttl_seconds": 300,
            },
        ),
        replies={201: Reply("Verification started; the code is on its way", "Otp", spec.OTP)},
        errors=(
            *spec.CREATES,
            "invalid_number",
            "country_not_allowed",
            "invalid_sender",
            "template_mismatch",
            "insufficient_credits",
        ),
    )
)
async def send_otp(request: Request) -> Response:
    """``POST /v1/otp`` → 201."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    body = await read_body(request, svc.settings.api.max_body_bytes)
    key = idempotency_key(request)
    digest = request_hash(request, body) if key else None
    if key and digest:
        earlier = await svc.store.get_idempotency(caller.account.id, key)
        if earlier is not None:
            return replay(earlier, digest)
    req: otp_schemas.OtpSendRequest = decode_json(_send_decoder, body)
    otp = otp_service(svc)
    limit = otp.policy.max_resends
    sent = await otp.send(
        caller.account,
        OtpRequest(
            to=req.to,
            sender=req.sender,
            template=req.template if req.template is not None else DEFAULT_TEMPLATE,
            length=req.length,
            ttl_seconds=req.ttl_seconds,
            template_id=req.template_id,
        ),
        sandbox=caller.sandbox,
        idempotency_key=key,
        request_hash=digest,
        render=lambda v: _encoder.encode(view(v, limit)).decode(),
    )
    if sent.replay is not None and digest:
        return replay(sent.replay, digest)
    return _json(view(sent.verification, limit), 201)


@documented(
    Endpoint(
        tag=_TAG,
        summary="A new code in a new message, after resend_after (at most 3 times)",
        operation_id="resendOtp",
        params=(path_param("otp_id", "The verification id (otp_...)", spec.OTP["id"]),),
        replies={200: Reply("The verification with its new code sent", "Otp", spec.OTP)},
        errors=("insufficient_credits", "not_found", "conflict", "sending_paused"),
    )
)
async def resend_otp(request: Request) -> Response:
    """``POST /v1/otp/{otp_id}/resend`` → 200, or 429 before ``resend_after``."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    otp = otp_service(svc)
    updated = await otp.resend(
        caller.account, request.path_params["otp_id"], sandbox=caller.sandbox
    )
    return _json(view(updated, otp.policy.max_resends))


@documented(
    Endpoint(
        tag=_TAG,
        summary="Check a code by verification id or number; a wrong one costs a try",
        operation_id="checkOtp",
        body=Body("OtpCheckRequest", {"to": "+919812345678", "code": "123456"}),
        replies={
            200: Reply(
                "approved, pending, expired or failed",
                "OtpCheckResult",
                {"id": spec.OTP["id"], "status": "approved", "attempts_left": 4},
            )
        },
        errors=("not_found", "conflict", "payload_too_large", "validation_error"),
    )
)
async def check_otp(request: Request) -> Response:
    """``POST /v1/otp/check`` → 200 with the verification's new status."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    body = await read_body(request, svc.settings.api.max_body_bytes)
    req: otp_schemas.OtpCheckRequest = decode_json(_check_decoder, body)
    checked = await otp_service(svc).check(caller.account, req.code, otp_id=req.id, to=req.to)
    return _json(
        otp_schemas.OtpCheckResult(
            checked.id, cast(otp_schemas.OtpStatus, checked.status), checked.attempts_left
        )
    )


routes = [
    Route("/v1/otp", send_otp, methods=["POST"]),
    Route("/v1/otp/check", check_otp, methods=["POST"]),
    Route("/v1/otp/{otp_id}/resend", resend_otp, methods=["POST"]),
]
