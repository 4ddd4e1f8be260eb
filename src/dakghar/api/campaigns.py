"""``/v1/campaigns``: bulk sends from a CSV upload (API.md "Campaigns (bulk)").

The upload is parsed as a stream (``campaigns.multipart``): the CSV goes to a temporary file in
the data directory, and once the whole body is received the request answers ``201`` with the
campaign ``ingesting``; :class:`dakghar.campaigns.service.CampaignService` (on the app's
services, ``extras["campaigns"]``) reads the file back row by row in the background. The report
streams page by page, every cell neutralised against formula injection (``core.csvcells``).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from dakghar.api import render
from dakghar.api.services import JSON, Services, services
from dakghar.campaigns import records
from dakghar.campaigns.multipart import read_form
from dakghar.campaigns.service import CampaignService, CampaignSpec, CampaignView
from dakghar.core.csvcells import safe_writer
from dakghar.errors import NotReady, ValidationError
from dakghar.store.sqlite.store import SqliteStore


def campaign_service(svc: Services) -> CampaignService:
    """The app's campaign service (built on first use)."""
    found = svc.extras.get("campaigns")
    if not isinstance(found, CampaignService):
        if not isinstance(svc.store, SqliteStore):
            raise NotReady("campaigns need the embedded SQLite store")
        found = svc.extras["campaigns"] = CampaignService(svc.store, svc.acceptor)
    return found


async def component(svc: Services) -> Callable[[], Awaitable[None]]:
    """Started with the app: recover what crashed ingests left; stop live ingests at the end."""
    if not isinstance(svc.store, SqliteStore):

        async def nothing() -> None:
            return None

        return nothing
    service = campaign_service(svc)
    await service.recover()
    return service.close


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


async def get_campaign(request: Request) -> Response:
    """``GET /v1/campaigns/{id}`` → live progress."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    return _json(await campaign_service(svc).get(caller.account, request.path_params["cid"]))


async def pause_campaign(request: Request) -> Response:
    """``POST /v1/campaigns/{id}/pause``: hold every message not yet sent."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    cid = request.path_params["cid"]
    return _json(await campaign_service(svc).pause(caller.account, cid))


async def resume_campaign(request: Request) -> Response:
    """``POST /v1/campaigns/{id}/resume``."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    cid = request.path_params["cid"]
    return _json(await campaign_service(svc).resume(caller.account, cid))


async def cancel_campaign(request: Request) -> Response:
    """``POST /v1/campaigns/{id}/cancel``: cancel (and refund) every waiting message."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    cid = request.path_params["cid"]
    return _json(await campaign_service(svc).cancel(caller.account, cid))


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
