"""``GET /v1/stats``: delivery rate and delivery time by carrier, region, connector or type.

Reads the hourly rollups (``store.rollups``) of the calling account only, so any window costs a
read of its hours, not of its messages. Hours are whole: ``since`` is rounded down to its hour.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dakghar.api import openapi_schemas as spec
from dakghar.api import render
from dakghar.api.endpoint import Endpoint, Reply, documented, query
from dakghar.api.messages import _time_param
from dakghar.api.services import JSON, services
from dakghar.errors import ValidationError
from dakghar.store.base import now_ms
from dakghar.store.rollups import GROUPS

DAY_MS = 86_400_000
MAX_WINDOW_MS = 400 * DAY_MS


@documented(
    Endpoint(
        tag="Operations",
        summary="Delivery rate and median delivery time by carrier, region, connector "
        "or type (default: the last 24 h)",
        operation_id="getStats",
        params=(
            query(
                "group_by",
                {"type": "string", "enum": ["carrier", "region", "connector", "type"]},
                "Dimension (default carrier)",
                "carrier",
            ),
            query("since", {"type": "string", "format": "date-time"}, "From (hourly)"),
            query("until", {"type": "string", "format": "date-time"}, "Until"),
        ),
        replies={
            200: Reply(
                "One row per key",
                spec.STATS_SCHEMA,
                {
                    "group_by": "carrier",
                    "data": [
                        {
                            "key": "Vi",
                            "submitted": 1,
                            "delivered": 1,
                            "failed": 0,
                            "delivery_rate": 1.0,
                            "p50_delivery_seconds": 0.5,
                        }
                    ],
                },
            )
        },
        errors=("validation_error",),
    )
)
async def stats(request: Request) -> Response:
    """``GET /v1/stats?group_by=carrier|region|connector|type&since=&until=`` (default: 24 h)."""
    svc = services(request)
    caller = await svc.auth.authenticate(request)
    group_by = request.query_params.get("group_by", "carrier")
    if group_by not in GROUPS:
        raise ValidationError(
            f"group_by must be one of {', '.join(GROUPS)}",
            errors=[{"field": "group_by", "code": "validation_error"}],
        )
    until = _time_param(request, "until") or now_ms()
    since = _time_param(request, "since") or until - DAY_MS
    if not 0 <= until - since <= MAX_WINDOW_MS:
        raise ValidationError(
            "since must be before until, and the window at most 400 days",
            errors=[{"field": "since", "code": "validation_error"}],
        )
    rows = await svc.store.delivery_stats(caller.account.id, group_by, since, until)
    data = [r.as_dict() for r in rows]
    return Response(render.encoder.encode({"data": data, "group_by": group_by}), media_type=JSON)


routes = [Route("/v1/stats", stats, methods=["GET"])]
