"""The published OpenAPI 3.1 document (``/openapi.json``) and a self-contained ``/docs`` page.

Schemas come from the very msgspec Structs that decode requests (``api.schemas``), so the document
cannot drift from what the server accepts; this module adds the paths, auth and error responses.
"""

from __future__ import annotations

import html
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from dakghar import __version__
from dakghar.api import otp_schemas, schemas

_STRUCTS = (
    schemas.MessageRequest,
    schemas.BatchShared,
    schemas.BatchList,
    schemas.Message,
    schemas.MessageList,
    schemas.BatchResponse,
    schemas.AccountView,
    schemas.AccountUpdate,
    schemas.WebhookSecret,
    otp_schemas.OtpSendRequest,
    otp_schemas.OtpCheckRequest,
    otp_schemas.Otp,
    otp_schemas.OtpCheckResult,
    schemas.Problem,
    schemas.Health,
)
_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _problems(*statuses: int) -> dict[str, Any]:
    text = {
        401: "Missing, unknown or revoked key (`unauthorized`)",
        402: "Balance cannot cover the message (`insufficient_credits`)",
        403: "The key lacks the scope this call needs (`forbidden`)",
        404: "No such object for this account (`not_found`)",
        409: "Idempotency-Key reused with another body, or state conflict",
        413: "Request body too large (`payload_too_large`)",
        422: "Validation failed (`validation_error`, `invalid_number`, `body_too_long`, "
        "`invalid_callback_url`, ...)",
        429: "Rate limited (`rate_limited`); see Retry-After",
        503: "Sending paused (`sending_paused`) or not ready",
    }
    return {
        str(s): {
            "description": text[s],
            "content": {"application/problem+json": {"schema": _ref("Problem")}},
        }
        for s in statuses
    }


_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key + same body within 24 h returns the first response",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_MESSAGE_ID = {
    "name": "message_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 64},
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_STATS = {
    "type": "object",
    "required": ["data", "group_by"],
    "properties": {
        "group_by": {"type": "string"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "submitted", "delivered", "failed"],
                "properties": {
                    "key": {"type": "string"},
                    "submitted": {"type": "integer"},
                    "delivered": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "delivery_rate": {"type": ["number", "null"]},
                    "p50_delivery_seconds": {"type": ["number", "null"]},
                },
            },
        },
    },
}
_SWITCHES = {
    "description": "Every paused switch",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"paused": {"type": "object"}},
                "required": ["paused"],
            }
        }
    },
}


def _operations(auth: list[dict[str, list[str]]], common: dict[str, Any]) -> dict[str, Any]:
    """Kill switches (the account's own; global and per connector for admin keys)."""
    paths: dict[str, Any] = {}
    for action, verb in (("pause", "Pause"), ("resume", "Resume")):
        paths[f"/v1/account/{action}"] = {
            "post": {
                "summary": f"{verb} sending for this account (queued messages wait, none lost)",
                "operationId": f"{action}Account",
                "security": auth,
                "responses": {"200": _json("AccountView", "The account"), **common},
            }
        }
        paths[f"/v1/switches/global/{action}"] = {
            "post": {
                "summary": f"{verb} sending for everyone (admin scope)",
                "operationId": f"{action}Global",
                "security": auth,
                "responses": {"200": _SWITCHES, **_problems(403), **common},
            }
        }
        paths[f"/v1/switches/connectors/{{name}}/{action}"] = {
            "post": {
                "summary": f"{verb} one connector; its traffic fails over (admin scope)",
                "operationId": f"{action}Connector",
                "security": auth,
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _SWITCHES, **_problems(403, 404), **common},
            }
        }
    paths["/v1/switches"] = {
        "get": {
            "summary": "Every paused switch (admin scope)",
            "operationId": "listSwitches",
            "security": auth,
            "responses": {"200": _SWITCHES, **_problems(403), **common},
        }
    }
    paths["/v1/connectors"] = {
        "get": {
            "summary": "Connectors: bound, window in use, breaker state, counters (admin scope)",
            "operationId": "listConnectors",
            "security": auth,
            "responses": {
                "200": {
                    "description": "Dispatcher and connector state",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_problems(403),
                **common,
            },
        }
    }
    paths["/v1/connectors/{name}/callback"] = {
        "post": {
            "summary": "Delivery reports from an HTTP provider (signed by the provider, no key)",
            "description": "Twilio, Plivo and Vonage sign their callbacks (X-Twilio-Signature, "
            "X-Plivo-Signature-V3, sig); MSG91 calls a URL carrying ?secret=. Idempotent: a "
            "report for a message already final changes nothing.",
            "operationId": "connectorCallback",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "204": {"description": "Every report in the callback is recorded"},
                "403": {
                    "description": "Signature or secret does not match (`forbidden`)",
                    "content": {"application/problem+json": {"schema": _ref("Problem")}},
                },
                **_problems(404, 413, 422),
            },
        }
    }
    return paths


def _otp(auth: list[dict[str, list[str]]], common: dict[str, Any]) -> dict[str, Any]:
    """OTP verification: send, resend, check (the code itself never appears in a response)."""
    return {
        "/v1/otp": {
            "post": {
                "summary": "Send a one-time code on the OTP lane",
                "operationId": "sendOtp",
                "security": auth,
                "parameters": [_IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("OtpSendRequest")}},
                },
                "responses": {
                    "201": _json("Otp", "Verification started; the code is on its way"),
                    **_problems(402, 409, 413, 422, 503),
                    **common,
                },
            }
        },
        "/v1/otp/{otp_id}/resend": {
            "post": {
                "summary": "A new code in a new message, after resend_after (at most 3 times)",
                "operationId": "resendOtp",
                "security": auth,
                "parameters": [
                    {
                        "name": "otp_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 64},
                    }
                ],
                "responses": {
                    "200": _json("Otp", "The verification with its new code sent"),
                    **_problems(402, 404, 409, 503),
                    **common,
                },
            }
        },
        "/v1/otp/check": {
            "post": {
                "summary": "Check a code by verification id or number; a wrong one costs a try",
                "operationId": "checkOtp",
                "security": auth,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("OtpCheckRequest")}},
                },
                "responses": {
                    "200": _json("OtpCheckResult", "approved, pending, expired or failed"),
                    **_problems(404, 409, 413, 422),
                    **common,
                },
            }
        },
    }


_CAMPAIGN_COUNTS = (
    "total", "valid", "invalid", "duplicates", "dnd_filtered",
    "queued", "sent", "delivered", "failed", "canceled",
)  # fmt: skip
_CAMPAIGN: dict[str, Any] = {
    "type": "object",
    "required": ["id", "status", *_CAMPAIGN_COUNTS],
    "properties": {
        "id": {"type": "string", "examples": ["cmp_019abc3f2e10a1b2c3d4e5f60718"]},
        "name": {"type": ["string", "null"]},
        "status": {
            "enum": [
                "ingesting",
                "scheduled",
                "running",
                "paused",
                "completed",
                "canceled",
                "failed",
            ],
            "description": (
                "ingesting: the upload is received and its rows are being validated and written "
                "in the background (the counts grow; none of its messages is sent yet); then "
                "scheduled or running. failed: the ingest could not finish (a malformed CSV, a "
                "crash); none of its messages is sent and all are refunded. completed, canceled "
                "and failed are final: pause, resume and cancel answer 409 conflict."
            ),
        },
        "type": {"enum": ["promotional", "transactional"]},
        "sender": {"type": ["string", "null"]},
        **{k: {"type": "integer", "minimum": 0} for k in _CAMPAIGN_COUNTS},
        "rate_per_second": {"type": ["integer", "null"]},
        "schedule_at": {"type": ["string", "null"], "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_CAMPAIGN_ID = {"name": "cid", "in": "path", "required": True, "schema": {"type": "string"}}


def _campaign_json(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _CAMPAIGN}}}


def _campaigns(auth: list[dict[str, list[str]]], common: dict[str, Any]) -> dict[str, Any]:
    """Bulk campaigns: a streamed CSV upload, live progress, pause/resume/cancel, a report."""
    paths: dict[str, Any] = {
        "/v1/campaigns": {
            "post": {
                "summary": "Queue a message per CSV row (streamed upload, rows validated)",
                "operationId": "createCampaign",
                "security": auth,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {
                                        "type": "string",
                                        "contentMediaType": "text/csv",
                                        "description": "Header row with 'phone' and variables",
                                    },
                                    "name": {"type": "string"},
                                    "sender": {"type": "string"},
                                    "body": {
                                        "type": "string",
                                        "description": "Text with {column} placeholders",
                                    },
                                    "template_id": {"type": "string"},
                                    "type": {"enum": ["promotional", "transactional"]},
                                    "schedule_at": {"type": "string", "format": "date-time"},
                                    "rate_per_second": {"type": "integer", "minimum": 1},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _campaign_json(
                        "Created as soon as the upload is received: status ingesting with live "
                        "counts; poll GET /v1/campaigns/{cid} for scheduled or running"
                    ),
                    **_problems(404, 413, 422, 503),
                    **common,
                },
            }
        },
        "/v1/campaigns/{cid}": {
            "get": {
                "summary": "A campaign with live progress",
                "operationId": "getCampaign",
                "security": auth,
                "parameters": [_CAMPAIGN_ID],
                "responses": {
                    "200": _campaign_json("The campaign"),
                    **_problems(404),
                    **common,
                },
            }
        },
        "/v1/campaigns/{cid}/report.csv": {
            "get": {
                "summary": "One row per recipient: phone, status, error_code, message_id",
                "operationId": "campaignReport",
                "security": auth,
                "parameters": [_CAMPAIGN_ID],
                "responses": {
                    "200": {
                        "description": "The report (streamed)",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **_problems(404),
                    **common,
                },
            }
        },
    }
    for action, summary in (
        ("pause", "Hold every message not yet sent"),
        ("resume", "Release held messages at the campaign's pace"),
        ("cancel", "Cancel every waiting message (credits refunded); also stops an ingest"),
    ):
        paths[f"/v1/campaigns/{{cid}}/{action}"] = {
            "post": {
                "summary": summary,
                "operationId": f"{action}Campaign",
                "security": auth,
                "parameters": [_CAMPAIGN_ID],
                "responses": {
                    "200": _campaign_json("The campaign"),
                    **_problems(404, 409),
                    **common,
                },
            }
        }
    return paths


def build_openapi() -> dict[str, Any]:
    """The whole OpenAPI document."""
    _, components = msgspec.json.schema_components(_STRUCTS, ref_template=_REF)
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    common = _problems(401, 429)
    paths: dict[str, Any] = {
        "/v1/messages": {
            "post": {
                "summary": "Send a message",
                "operationId": "sendMessage",
                "security": auth,
                "parameters": [_IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("MessageRequest")}},
                },
                "responses": {
                    "202": _json("Message", "Accepted and queued (or scheduled)"),
                    **_problems(402, 409, 413, 422, 503),
                    **common,
                },
            },
            "get": {
                "summary": "List messages, newest first",
                "operationId": "listMessages",
                "security": auth,
                "parameters": [
                    _query("status", {"type": "string"}, "Filter by status"),
                    _query("to", {"type": "string", "maxLength": 64}, "Filter by number"),
                    _query("reference", {"type": "string", "maxLength": 128}, "Your reference"),
                    _query("since", {"type": "string", "format": "date-time"}, "Created at >="),
                    _query("until", {"type": "string", "format": "date-time"}, "Created at <"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page"),
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                ],
                "responses": {
                    "200": _json("MessageList", "A page of messages"),
                    **_problems(422),
                    **common,
                },
            },
        },
        "/v1/messages/batch": {
            "post": {
                "summary": "Send up to 1,000 messages; bad entries are rejected one by one",
                "operationId": "sendBatch",
                "security": auth,
                "parameters": [_IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [_ref("BatchList"), _ref("BatchShared")]}
                        }
                    },
                },
                "responses": {
                    "202": _json("BatchResponse", "Accepted and rejected entries"),
                    **_problems(409, 413, 422, 503),
                    **common,
                },
            }
        },
        "/v1/messages/{message_id}": {
            "get": {
                "summary": "A message with its event history",
                "operationId": "getMessage",
                "security": auth,
                "parameters": [_MESSAGE_ID],
                "responses": {"200": _json("Message", "The message"), **_problems(404), **common},
            }
        },
        "/v1/messages/{message_id}/cancel": {
            "post": {
                "summary": "Cancel a scheduled or queued message (credits refunded)",
                "operationId": "cancelMessage",
                "security": auth,
                "parameters": [_MESSAGE_ID],
                "responses": {
                    "200": _json("Message", "The canceled message"),
                    **_problems(404, 409),
                    **common,
                },
            }
        },
        "/v1/account": {
            "get": {
                "summary": "Balance, limits, default sender and region",
                "operationId": "getAccount",
                "security": auth,
                "responses": {"200": _json("AccountView", "The account"), **common},
            },
            "patch": {
                "summary": "Change the account's callback and inbound URLs, default sender, "
                "webhook_events (final | sent | all) or smart encoding; a null URL clears it",
                "description": "Billing fields (balance, prices, limits) are changed only by the "
                "operator with `dakghar accounts update`. A callback or inbound URL must be a "
                "public http(s) URL without user:password (`invalid_callback_url`), unless the "
                "operator allows private networks.",
                "operationId": "updateAccount",
                "security": auth,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("AccountUpdate")}},
                },
                "responses": {
                    "200": _json("AccountView", "The account"),
                    **_problems(422),
                    **common,
                },
            },
        },
        "/v1/account/webhook-secret": {
            "get": {
                "summary": "The secret that signs this account's webhooks (Dakghar-Signature)",
                "operationId": "getWebhookSecret",
                "security": auth,
                "responses": {"200": _json("WebhookSecret", "The secret"), **common},
            }
        },
        "/v1/account/webhook-secret/rotate": {
            "post": {
                "summary": "Rotate the webhook secret; the old one also signs for 24 h "
                "(Dakghar-Signature: t=...,v1=<new>,v1=<old>)",
                "operationId": "rotateWebhookSecret",
                "security": auth,
                "responses": {"201": _json("WebhookSecret", "The new secret"), **common},
            }
        },
        **_otp(auth, common),
        **_campaigns(auth, common),
        **_operations(auth, common),
        "/v1/stats": {
            "get": {
                "summary": "Delivery rate and median delivery time by carrier, region, connector "
                "or type (default: the last 24 h)",
                "operationId": "getStats",
                "security": auth,
                "parameters": [
                    _query(
                        "group_by",
                        {"type": "string", "enum": ["carrier", "region", "connector", "type"]},
                        "Dimension (default carrier)",
                    ),
                    _query("since", {"type": "string", "format": "date-time"}, "From (hourly)"),
                    _query("until", {"type": "string", "format": "date-time"}, "Until"),
                ],
                "responses": {
                    "200": {
                        "description": "One row per key",
                        "content": {"application/json": {"schema": _STATS}},
                    },
                    **_problems(422),
                    **common,
                },
            }
        },
        "/v1/dashboard": {
            "get": {
                "summary": "What /dashboard shows: counters, delivery by carrier and region, "
                "queue, connectors, campaigns, alerts (admin scope)",
                "operationId": "getDashboard",
                "security": auth,
                "responses": {
                    "200": {
                        "description": "Gateway-wide figures",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_problems(403),
                    **common,
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "responses": {"200": _json("Health", "Alive")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: store, queue and a bound connector",
                "operationId": "readyz",
                "responses": {
                    "200": _json("Health", "Ready"),
                    "503": _json("Health", "Not ready"),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dakghar SMS gateway",
            "version": __version__,
            "description": "Send SMS through one REST API. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API key: test_... (sandbox) or live_...",
                }
            },
        },
    }


_DOCUMENT = msgspec.json.encode(build_openapi())


async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``."""
    return Response(_DOCUMENT, media_type="application/json")


async def docs(request: Request) -> Response:
    """``GET /docs``: a plain, offline page listing every operation and its schema."""
    doc = build_openapi()
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = ", ".join(op["responses"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>"
                f"</td><td>{html.escape(op['summary'])}</td><td>{codes}</td></tr>"
            )
    page = (
        "<!doctype html><meta charset=utf-8><title>Dakghar API</title>"
        "<style>body{font:15px system-ui;margin:2em}td{padding:4px 10px;border-bottom:1px solid"
        " #ddd}</style><h1>Dakghar API</h1><p>Machine-readable schema: "
        "<a href=/openapi.json>/openapi.json</a> (OpenAPI 3.1).</p><table>"
        "<tr><th>method</th><th>path</th><th>what</th><th>responses</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return HTMLResponse(page)


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
