"""Request and response shapes of ``/v1/otp``, as msgspec Structs (decoding and OpenAPI alike)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from dakghar.api.schemas import Number, Sender, TemplateId

OtpId = Annotated[str, Meta(min_length=1, max_length=64, description="Verification id (otp_...)")]
Code = Annotated[
    str, Meta(pattern=r"^[0-9]{4,10}$", description="The code the user typed (4 to 10 digits)")
]
OtpTemplate = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=480,
        description="Message text; must contain {code}, may contain {minutes}",
    ),
]
OtpStatus = Literal["pending", "approved", "expired", "failed"]


class OtpSendRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/otp``."""

    to: Number
    sender: Sender | None = None
    template: OtpTemplate | None = None
    template_id: TemplateId | None = None
    length: Annotated[int, Meta(ge=4, le=10, description="Digits in the code")] = 6
    ttl_seconds: Annotated[int, Meta(ge=60, le=3600, description="Code lifetime")] = 300


class OtpCheckRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/otp/check``: the code with either the verification id or the number."""

    code: Code
    id: OtpId | None = None
    to: Number | None = None


class Otp(msgspec.Struct):
    """A verification. The code itself is never part of it."""

    id: str
    to: str
    status: OtpStatus
    expires_at: str
    resend_after: str | None  # null once no resend is left
    resends_left: int
    attempts_left: int
    message_id: str | None
    created_at: str


class OtpCheckResult(msgspec.Struct):
    """The outcome of a check."""

    id: str
    status: OtpStatus
    attempts_left: int
