"""Python client for the Dakghar SMS gateway API (``/work/shared/API.md``, "Python SDK").

``Client`` (blocking) and ``AsyncClient`` (asyncio) share one core (``_core``,
``_operations``); errors are :class:`ApiError` subclasses named by the API ``code``; typed
results are in ``models``; ``webhooks.verify`` checks ``Dakghar-Signature``.
"""

from dakghar_client import webhooks
from dakghar_client._async import AsyncClient
from dakghar_client._core import DEFAULT_BASE_URL, VERSION
from dakghar_client._sync import Client
from dakghar_client.errors import (
    ApiError,
    BodyEmpty,
    BodyTooLong,
    Conflict,
    CountryNotAllowed,
    DakgharClientError,
    DndBlocked,
    Forbidden,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidCallbackUrl,
    InvalidNumber,
    InvalidSender,
    NetworkError,
    NotCancelable,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    SendingPaused,
    TemplateMismatch,
    Unauthorized,
    UnregisteredLink,
    ValidationError,
)
from dakghar_client.models import (
    Account,
    BatchRejection,
    BatchResult,
    Campaign,
    Message,
    MessageEvent,
    Otp,
    OtpCheck,
    RateLimit,
    WebhookSecret,
)
from dakghar_client.webhooks import SignatureError

__version__ = VERSION

__all__ = [
    "DEFAULT_BASE_URL",
    "Account",
    "ApiError",
    "AsyncClient",
    "BatchRejection",
    "BatchResult",
    "BodyEmpty",
    "BodyTooLong",
    "Campaign",
    "Client",
    "Conflict",
    "CountryNotAllowed",
    "DakgharClientError",
    "DndBlocked",
    "Forbidden",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidCallbackUrl",
    "InvalidNumber",
    "InvalidSender",
    "Message",
    "MessageEvent",
    "NetworkError",
    "NotCancelable",
    "NotFound",
    "Otp",
    "OtpCheck",
    "PayloadTooLarge",
    "RateLimit",
    "RateLimited",
    "SendingPaused",
    "SignatureError",
    "TemplateMismatch",
    "Unauthorized",
    "UnregisteredLink",
    "ValidationError",
    "WebhookSecret",
    "__version__",
    "webhooks",
]
