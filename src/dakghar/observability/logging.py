"""Structured logs with one redaction layer.

Every log line passes :func:`redact` before rendering: message bodies and OTP codes are dropped,
phone numbers are masked (``+91******5678``). JSON lines when not on a terminal, readable text on
one (``log_format`` overrides).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from dakghar.core.numbers import mask

_DROP = frozenset({"body", "text", "short_message", "code", "otp", "password", "api_key", "key"})
_MASK = frozenset({"to", "to_number", "number", "phone", "msisdn", "source_addr", "dest_addr"})


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Remove content and mask numbers in a log event (a structlog processor)."""
    for key in list(event):
        if key in _DROP:
            event[key] = "[redacted]"
        elif key in _MASK and isinstance(event[key], str):
            event[key] = mask(event[key])
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing.

    Loggers are cached on first use; one holding the stream of the moment it was created would
    keep writing to a stream replaced since (a test runner's capture, a closed pipe).
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Set up structlog (and route stdlib logging through the same level)."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s")
    # Alembic narrates every migration step at INFO; only its warnings belong in our log.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    # Tracebacks as plain text, never with each frame's local variables: rich's pretty
    # tracebacks show locals, and those hold message bodies, OTP codes and bind passwords.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    tracebacks = [structlog.processors.format_exc_info] if json_lines else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            *tracebacks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A bound structlog logger."""
    return structlog.get_logger(name)
