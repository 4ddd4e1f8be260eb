"""Delivery reports from HTTP providers: ``POST /v1/connectors/{name}/callback``.

Providers post their status callbacks here (the URL is given per message, or set in the
provider's console). No API key: the provider's signature proves the sender (Twilio, Plivo,
Vonage with a signature secret), or a shared secret in the URL where the provider does not sign
(MSG91). A verified callback is parsed into reports, each settled through the dispatcher, which
ignores reports for messages already final, so a provider's retries change nothing.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dakghar.api.endpoint import Body, Endpoint, Reply, documented, path_param
from dakghar.api.services import services
from dakghar.connectors.http.base import Callback, CallbackReceiver, CallbackRejected
from dakghar.errors import Forbidden, NotFound, PayloadTooLarge, ValidationError
from dakghar.observability.logging import get_logger

log = get_logger("dakghar.api.callbacks")
MAX_BODY = 64 * 1024  # a status callback is a few hundred bytes; MSG91 batches stay far below


@documented(
    Endpoint(
        tag="Operations",
        summary="Delivery reports from an HTTP provider (signed by the provider, no key)",
        description="Twilio, Plivo and Vonage sign their callbacks (X-Twilio-Signature, "
        "X-Plivo-Signature-V3, sig); MSG91 calls a URL carrying ?secret=. Idempotent: a "
        "report for a message already final changes nothing.",
        operation_id="connectorCallback",
        auth=False,
        params=(path_param("name", "Connector name ([[connectors]] in dakghar.toml)", "twilio"),),
        body=Body(
            {"type": "object"},
            {"MessageSid": "SM0123456789abcdef", "MessageStatus": "delivered"},
            media_type="application/x-www-form-urlencoded",
            also=("application/json",),
        ),
        replies={204: Reply("Every report in the callback is recorded")},
        errors=("forbidden", "not_found", "payload_too_large", "validation_error"),
    )
)
async def callback(request: Request) -> Response:
    """Verify, parse and apply one provider callback; 204 once every report is recorded."""
    name = request.path_params["name"]
    delivery = services(request).delivery
    connector = delivery.connectors.get(name) if delivery is not None else None
    if delivery is None or not isinstance(connector, CallbackReceiver):
        raise NotFound(f"no HTTP provider connector named {name!r}")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"a callback is at most {MAX_BODY} bytes")
    content_type = request.headers.get("content-type", "")
    form: dict[str, str] = {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    inbound = Callback(
        url=str(request.url),
        method=request.method,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        form=form,
        body=body,
    )
    try:
        reports = connector.receive(inbound)
    except CallbackRejected as exc:
        log.warning("callback rejected", connector=name, reason=str(exc))
        raise Forbidden(f"callback not verified: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationError(f"callback not understood: {exc}") from exc
    for report in reports:
        await delivery.report(name, report)
    return Response(status_code=204)


routes = [Route("/v1/connectors/{name}/callback", callback, methods=["POST"])]
