"""``/v1/campaigns``: bulk sends from a CSV upload (API.md "Campaigns (bulk)").

The upload is parsed as a stream (``campaigns.multipart``): the CSV goes to a temporary file in
the data directory, and once the whole body is received the request answers ``201`` with the
campaign ``ingesting``; :class:`dakghar.campaigns.service.CampaignService` (on the app's
services, ``Services.campaigns``) reads the file back row by row in the background. The report
streams page by page, every cell neutralised against formula injection (``core.csvcells``).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from dakghar.api import openapi_schemas as spec
from dakghar.api import render
from dakghar.api.endpoint import Body, Endpoint, Reply, documented, path_param
from dakghar.api.services import JSON, Services, services
from dakghar.campaigns import records
from dakghar.campaigns.multipart import read_form
from dakghar.campaigns.service import CampaignService, CampaignSpec, CampaignView
from dakghar.core.csvcells import safe_writer
from dakghar.errors import NotReady, ValidationError


def campaign_service(svc: Services) -> CampaignService:
    """The app's campaign service (built, and recovered, by ``dakghar.gateway``)."""
    if svc.campaigns is None:
        raise NotReady("the configured store does not keep campaigns")
    return svc.campaigns


def view(c: CampaignView) -> dict[str, Any]:
    """The public campaign object (times as ISO 8601)."""
    data = asdict(c)
    data["schedule_at"] = render.iso(c.schedule_at)
    data["created_at"] = render.iso(c.created_at)
    return data


def _json(c: CampaignView, status: int = 200) -> Response:
    return Response(render.encoder.encode(view(c)), status_code=status, media_type=JSON)


def _spec(fields: dict[str, str]) -> CampaignSpec:
    def opt(name: str) -> str | None:
        value = fields.get(name, "").strip()
        return value or None

    schedule = opt("schedule_at")
    rate = opt("rate_per_second")
    try:
        when = datetime.fromisoformat(schedule.replace("Z", "+00:00")) if schedule else None
    except ValueError:
        raise ValidationError(
            "schedule_at is not an ISO 8601 time",
            errors=[{"field": "schedule_at", "code": "validation_error"}],
        ) from None
    if rate is not None and not rate.isdigit():
        raise ValidationError(
            "rate_per_second must be a whole number",
            errors=[{"field": "rate_per_second", "code": "validation_error"}],
        )
    return CampaignSpec(
        body=fields.get("body") or None,
        sender=opt("sender"),
        type=opt("type") or "promotional",
        template_id=opt("template_id"),
        name=opt("name"),
        schedule_at=when,
        rate_per_second=int(rate) if rate is not None else None,
    )


_TAG = "Campaigns"
_CAMPAIGN_ID = path_param("cid", "The campaign id (cmp_...)", spec.CAMPAIGN["id"])


def _campaign(description: str, example: dict[str, Any] = spec.CAMPAIGN) -> Reply:
    return Reply(description, spec.CAMPAIGN_SCHEMA, example)


def _campaign_action(action: str, summary: str, status: str) -> Endpoint:
    return Endpoint(
        tag=_TAG,
        summary=summary,
        operation_id=f"{action}Campaign",
        params=(_CAMPAIGN_ID,),
        replies={200: _campaign("The campaign", {**spec.CAMPAIGN, "status": status})},
        errors=("not_found", "conflict"),
    )


@documented(
    Endpoint(
        tag=_TAG,
        summary="Queue a message per CSV row (streamed upload, rows validated)",
        operation_id="createCampaign",
        body=Body(
            spec.CAMPAIGN_UPLOAD,
            {
                "file": "phone,name\n+919812345678,Asha\n+919812345679,Ravi\n",
                "name": "diwali",
                "body": "Hi {name}, our sale starts today",
                "type": "promotional",
            },
            media_type="multipart/form-data",
        ),
        replies={
            201: _campaign(
                "Created as soon as the upload is received: status ingesting with live "
                "counts; poll GET /v1/campaigns/{cid} for scheduled or running",
                {**spec.CAMPAIGN, "status": "ingesting", "total": 0, "valid": 0, "queued": 0},
            )
        },
        errors=(
            "not_found",
            "payload_too_large",
            "validation_error",
            "invalid_sender",
            "template_mismatch",
            "not_ready",
        ),
    )
)
async def create_campaign(request: Request) -> Response:
    """``POST /v1/campaigns`` (multipart: ``file`` and fields) → 201."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    service = campaign_service(svc)
    svc.acceptor.check_open(caller.account)
    form = await read_form(
        request.stream(),
        request.headers.get("content-type", ""),
        directory=svc.settings.data_dir,
    )
    try:
        if form.file is None:
            raise ValidationError(
                "attach the recipients as a CSV file part named 'file'",
                errors=[{"field": "file", "code": "validation_error"}],
            )
        # The whole upload is on disk now; the rows are read after the answer.
        created = await service.start(
            caller.account, _spec(form.fields), form.file, sandbox=caller.sandbox
        )
    except BaseException:
        form.close()  # once started, the background ingest owns (and closes) the file
        raise
    return _json(created, 201)


@documented(
    Endpoint(
        tag=_TAG,
        summary="A campaign with live progress",
        operation_id="getCampaign",
        params=(_CAMPAIGN_ID,),
        replies={200: _campaign("The campaign")},
        errors=("not_found",),
    )
)
async def get_campaign(request: Request) -> Response:
    """``GET /v1/campaigns/{id}`` → live progress."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    return _json(await campaign_service(svc).get(caller.account, request.path_params["cid"]))


@documented(_campaign_action("pause", "Hold every message not yet sent", "paused"))
async def pause_campaign(request: Request) -> Response:
    """``POST /v1/campaigns/{id}/pause``: hold every message not yet sent."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    cid = request.path_params["cid"]
    return _json(await campaign_service(svc).pause(caller.account, cid))


@documented(_campaign_action("resume", "Release held messages at the campaign's pace", "running"))
async def resume_campaign(request: Request) -> Response:
    """``POST /v1/campaigns/{id}/resume``."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    cid = request.path_params["cid"]
    return _json(await campaign_service(svc).resume(caller.account, cid))


@documented(
    _campaign_action(
        "cancel",
        "Cancel every waiting message (credits refunded); also stops an ingest",
        "canceled",
    )
)
async def cancel_campaign(request: Request) -> Response:
    """``POST /v1/campaigns/{id}/cancel``: cancel (and refund) every waiting message."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    cid = request.path_params["cid"]
    return _json(await campaign_service(svc).cancel(caller.account, cid))


@documented(
    Endpoint(
        tag=_TAG,
        summary="One row per recipient: phone, status, error_code, message_id",
        operation_id="campaignReport",
        params=(_CAMPAIGN_ID,),
        replies={
            200: Reply(
                "The report (streamed)",
                {"type": "string"},
                "phone,status,error_code,message_id\n"
                "+919812345678,delivered,,msg_01a23405bf1625aa9f7ccb6ae4ce\n",
                "text/csv",
            )
        },
        errors=("not_found",),
    )
)
async def report(request: Request) -> Response:
    """``GET /v1/campaigns/{id}/report.csv``: one row per recipient, streamed."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    service = campaign_service(svc)
    campaign = await service.get(caller.account, request.path_params["cid"])

    async def lines() -> AsyncIterator[bytes]:
        buf = io.StringIO()
        out = safe_writer(buf, lineterminator="\n")
        out.writerow(("phone", "status", "error_code", "message_id"))
        n = 0
        async for row in records.report_rows(service.store, campaign.id):
            out.writerow(row)
            n += 1
            if n % 2000 == 0:
                yield buf.getvalue().encode()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue().encode()

    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{campaign.id}.csv"'},
    )


routes = [
    Route("/v1/campaigns", create_campaign, methods=["POST"]),
    Route("/v1/campaigns/{cid}", get_campaign, methods=["GET"]),
    Route("/v1/campaigns/{cid}/report.csv", report, methods=["GET"]),
    Route("/v1/campaigns/{cid}/pause", pause_campaign, methods=["POST"]),
    Route("/v1/campaigns/{cid}/resume", resume_campaign, methods=["POST"]),
    Route("/v1/campaigns/{cid}/cancel", cancel_campaign, methods=["POST"]),
]
