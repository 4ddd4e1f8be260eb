"""``/v1/account`` and the health endpoints."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dakghar.api import openapi_schemas as spec
from dakghar.api import render, schemas
from dakghar.api.endpoint import Body, Endpoint, Reply, documented
from dakghar.api.services import JSON, decode_json, read_body, services
from dakghar.core.compose import check_sender
from dakghar.errors import NotFound
from dakghar.store.base import Account, new_webhook_secret, now_ms

_update_decoder = msgspec.json.Decoder(schemas.AccountUpdate)


_TAG = "Account"
_SECRET = {"webhook_secret": "whsec_X5RnQ6g3A3t8xrCDauV5Be0E5CxU077yHWuEnubQ1bg",
           "previous_expires_at": None}  # fmt: skip


@documented(
    Endpoint(
        tag=_TAG,
        summary="Balance, limits, default sender and region",
        operation_id="getAccount",
        replies={200: Reply("The account", "AccountView", spec.ACCOUNT)},
    )
)
async def get_account(request: Request) -> Response:
    """``GET /v1/account``: balance, limits, default sender and region."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    fresh = await svc.store.get_account(caller.account.id) or caller.account
    return Response(render.encoder.encode(render.account(fresh, caller.key.mode)), media_type=JSON)


@documented(
    Endpoint(
        tag=_TAG,
        summary="Change the account's callback and inbound URLs, default sender, "
        "webhook_events (final | sent | all) or smart encoding; a null URL clears it",
        description="Billing fields (balance, prices, limits) are changed only by the "
        "operator with `dakghar accounts update`. A callback or inbound URL must be a "
        "public http(s) URL without user:password (`invalid_callback_url`), unless the "
        "operator allows private networks.",
        operation_id="updateAccount",
        body=Body(
            "AccountUpdate",
            {"callback_url": "https://app.example.com/hooks/sms", "webhook_events": "sent"},
        ),
        replies={
            200: Reply(
                "The account",
                "AccountView",
                {
                    **spec.ACCOUNT,
                    "callback_url": "https://app.example.com/hooks/sms",
                    "webhook_events": "sent",
                },
            )
        },
        errors=("validation_error", "invalid_callback_url", "invalid_sender", "payload_too_large"),
    )
)
async def update_account(request: Request) -> Response:
    """``PATCH /v1/account``: callback and inbound URLs, default sender, webhook events, smart
    encoding. Unnamed fields stay as they are."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    body = await read_body(request, svc.settings.api.max_body_bytes)
    req = decode_json(_update_decoder, body)
    changes = {
        f: getattr(req, f) for f in req.__struct_fields__ if getattr(req, f) is not msgspec.UNSET
    }
    for url_field in ("callback_url", "inbound_url"):
        if changes.get(url_field) is not None:
            svc.check_callback(changes[url_field], field=url_field)
    if changes.get("default_sender") is not None:
        changes["default_sender"] = check_sender(changes["default_sender"])
    fresh = await svc.store.update_account(caller.account.id, **changes)
    if fresh is None:
        raise NotFound("account not found")
    svc.auth.forget()  # cached callers carry the old settings
    return Response(render.encoder.encode(render.account(fresh, caller.key.mode)), media_type=JSON)


ROTATION_OVERLAP_MS = 24 * 3600 * 1000  # API.md: both secrets sign for 24 h


def _secret_view(acc: Account, now: int) -> schemas.WebhookSecret:
    expires = acc.previous_secret_expires_at
    live = acc.previous_webhook_secret is not None and expires is not None and expires > now
    return schemas.WebhookSecret(acc.webhook_secret, render.iso(expires) if live else None)


@documented(
    Endpoint(
        tag=_TAG,
        summary="The secret that signs this account's webhooks (Dakghar-Signature)",
        operation_id="getWebhookSecret",
        replies={200: Reply("The secret", "WebhookSecret", _SECRET)},
    )
)
async def get_webhook_secret(request: Request) -> Response:
    """``GET /v1/account/webhook-secret``: the secret receivers verify signatures with."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    acc = await svc.store.get_account(caller.account.id) or caller.account
    return Response(render.encoder.encode(_secret_view(acc, now_ms())), media_type=JSON)


@documented(
    Endpoint(
        tag=_TAG,
        summary="Rotate the webhook secret; the old one also signs for 24 h "
        "(Dakghar-Signature: t=...,v1=<new>,v1=<old>)",
        operation_id="rotateWebhookSecret",
        replies={
            201: Reply(
                "The new secret",
                "WebhookSecret",
                {**_SECRET, "previous_expires_at": "2026-12-02T23:52:00.000Z"},
            )
        },
    )
)
async def rotate_webhook_secret(request: Request) -> Response:
    """``POST /v1/account/webhook-secret/rotate``: a new secret; the old one keeps signing
    (as a second ``v1=``) for 24 h, so receivers can switch without missing a webhook."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    current = await svc.store.get_account(caller.account.id) or caller.account
    now = now_ms()
    fresh = await svc.store.update_account(
        current.id,
        webhook_secret=new_webhook_secret(),
        previous_webhook_secret=current.webhook_secret,
        previous_secret_expires_at=now + ROTATION_OVERLAP_MS,
    )
    if fresh is None:
        raise NotFound("account not found")
    svc.auth.forget()
    body = render.encoder.encode(_secret_view(fresh, now))
    return Response(body, status_code=201, media_type=JSON)


@documented(
    Endpoint(
        tag="Operations",
        summary="Liveness",
        operation_id="healthz",
        auth=False,
        replies={200: Reply("Alive", "Health", {"status": "ok", "checks": {}})},
    )
)
async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return Response(render.encoder.encode(schemas.Health("ok")), media_type=JSON)


@documented(
    Endpoint(
        tag="Operations",
        summary="Readiness: store, queue and a bound connector",
        operation_id="readyz",
        auth=False,
        replies={
            200: Reply(
                "Ready", "Health", {"status": "ok", "checks": {"store": "ok", "connectors": "ok"}}
            ),
            503: Reply(
                "Not ready",
                "Health",
                {"status": "unavailable", "checks": {"store": "ok", "connectors": "down"}},
            ),
        },
    )
)
async def readyz(request: Request) -> Response:
    """Readiness: the store answers, the queue is there, and a connector is bound."""
    svc = services(request)
    checks: dict[str, str] = {}
    checks["store"] = "ok" if await svc.store.ping() else "down"
    for name, probe in svc.readiness.items():
        checks[name] = "ok" if probe() else "down"
    ok = all(v == "ok" for v in checks.values())
    body = render.encoder.encode(schemas.Health("ok" if ok else "unavailable", checks))
    return Response(body, status_code=200 if ok else 503, media_type=JSON)


routes = [
    Route("/v1/account", get_account, methods=["GET"]),
    Route("/v1/account", update_account, methods=["PATCH"]),
    Route("/v1/account/webhook-secret", get_webhook_secret, methods=["GET"]),
    Route("/v1/account/webhook-secret/rotate", rotate_webhook_secret, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
