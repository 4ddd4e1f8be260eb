"""Times as the API writes them: RFC 3339 UTC with milliseconds, from integer milliseconds.

The one formatting of a timestamp for every outside reader: API objects, webhooks (message
status and alerts) and the CLI.
"""

from __future__ import annotations

import time

_last_iso: tuple[int, str] = (-1, "")


def iso(ms: int | None) -> str | None:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-24T10:00:00.123Z``."""
    global _last_iso
    if ms is None:
        return None
    if _last_iso[0] == ms:  # a batch renders the same instant thousands of times
        return _last_iso[1]
    seconds, millis = divmod(ms, 1000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    _last_iso = (ms, text)
    return text
