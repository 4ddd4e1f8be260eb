"""Times as the API writes them: RFC 3339 UTC with milliseconds, from integer milliseconds.

The one formatting of a timestamp for every outside reader: API objects, webhooks (message
status and alerts) and the CLI.
"""

from __future__ import annotations

import time

# "2026-11-24T10:00:00" by whole second: a message's response has its creation and its expiry,
# a day apart, so a cache of the last instant alone missed on every call.
_SECONDS: dict[int, str] = {}


def iso(ms: int | None) -> str | None:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-24T10:00:00.123Z``."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    text = _SECONDS.get(seconds)
    if text is None:
        if len(_SECONDS) >= 256:
            _SECONDS.clear()
        text = _SECONDS[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{millis:03d}Z"
