"""The operator dashboard: ``/dashboard`` (a self-contained page) and ``/v1/dashboard`` (its data).

The page holds no data and needs no CDN: inline CSS, inline JavaScript and SVG charts. It asks
for an API key with the ``admin`` scope (kept in sessionStorage only; ``#key=...`` in the URL
works too, for kiosks and tests), then polls ``/v1/dashboard`` every 2 seconds: throughput
(computed in the page from the counters' deltas), delivery rate by carrier and region over the
last 24 hours (the rollups), queue depth per lane, connector health, recent campaigns with
progress and recent alerts. The data is gateway-wide, hence the admin scope.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from dakghar.api import render
from dakghar.api.endpoint import Endpoint, Reply, documented
from dakghar.api.operations import _admin
from dakghar.api.services import JSON, services
from dakghar.core.message import FAILED_STATUSES, LANES
from dakghar.store.base import now_ms
from dakghar.store.campaigns import CampaignStore

_LANES = {str(int(lane)): lane.label for lane in LANES}
_FAILED = sorted(s.value for s in FAILED_STATUSES)


@documented(
    Endpoint(
        tag="Operations",
        summary="What /dashboard shows: counters, delivery by carrier and region, "
        "queue, connectors, campaigns, alerts (admin scope)",
        operation_id="getDashboard",
        replies={
            200: Reply("Gateway-wide figures", {"type": "object"}, {"counters": {"accepted": 1}})
        },
        errors=("forbidden",),
    )
)
async def dashboard_data(request: Request) -> Response:
    """``GET /v1/dashboard`` (admin scope): everything the page shows, in one read."""
    svc = services(request)
    _admin(await svc.auth.authenticate(request))
    now = now_ms()
    since = now - 86_400_000
    queue = await svc.store.queue_stats()
    lanes: dict[str, int] = {name: 0 for name in _LANES.values()}
    for key, n in queue.get("counts", {}).items():
        status, lane = key.split(":")
        if status == "queued":
            lanes[_LANES.get(lane, lane)] += int(n)
    counters = {"accepted": 0.0, "sent": 0.0, "delivered": 0.0, "failed": 0.0}
    metrics = svc.metrics
    if metrics is not None:
        for family in metrics.families():
            for s in family.samples:
                if s.name == "dakghar_messages_accepted_total":
                    counters["accepted"] += s.value
                elif s.name == "dakghar_message_status_changes_total":
                    status = s.labels["status"]
                    if status in ("sent", "delivered"):
                        counters[status] += s.value
                    elif status in _FAILED:
                        counters["failed"] += s.value
    delivery = svc.delivery
    connectors = [
        {
            "name": name,
            "ready": bool(c.get("ready")),
            "breaker": c.get("breaker", {}).get("state", "closed"),
            "in_flight": c.get("window_in_use", c.get("in_flight", 0)),
        }
        for name, c in (delivery.state()["connectors"] if delivery else {}).items()
    ]
    campaigns = []
    if isinstance(svc.store, CampaignStore):
        for row in await svc.store.recent_campaigns(5):
            done = await svc.store.campaign_progress(row.id)
            campaigns.append(
                {
                    "id": row.id,
                    "name": row.name,
                    "status": row.status,
                    "valid": row.valid,
                    "delivered": done.get("delivered", 0),
                    "failed": sum(done.get(s, 0) for s in _FAILED),
                }
            )
    alerts = svc.alerts
    by_carrier = await svc.store.delivery_stats(None, "carrier", since, now + 1)
    by_region = await svc.store.delivery_stats(None, "region", since, now + 1)
    body = {
        "at": now,
        "counters": counters,
        "by_carrier": [r.as_dict() for r in by_carrier],
        "by_region": [r.as_dict() for r in by_region],
        "queue": lanes,
        "oldest_queued_seconds": {
            _LANES.get(str(k), str(k)): v for k, v in queue.get("oldest_queued_seconds", {}).items()
        },
        "connectors": connectors,
        "campaigns": campaigns,
        "alerts": list(alerts.recent)[-10:] if alerts is not None else [],
    }
    return Response(render.encoder.encode(body), media_type=JSON)


PAGE = (Path(__file__).parent / "static" / "dashboard.html").read_text(encoding="utf-8")


@documented(
    Endpoint(
        tag="Operations",
        summary="The operator dashboard page (asks for an admin key; no data in it)",
        operation_id="dashboardPage",
        auth=False,
        replies={200: Reply("The page", {"type": "string"}, "<!doctype html>...", "text/html")},
    )
)
async def dashboard_page(request: Request) -> Response:
    """``GET /dashboard``: the page (no data in it)."""
    return HTMLResponse(PAGE)


routes = [
    Route("/dashboard", dashboard_page, methods=["GET"]),
    Route("/v1/dashboard", dashboard_data, methods=["GET"]),
]
