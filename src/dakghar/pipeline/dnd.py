"""The do-not-disturb check made before a promotional message is accepted.

India's TRAI registry (NCPR) forbids promotional messages to numbers registered on it; a gateway
that checks before queueing gives the application an honest 422 at once instead of a carrier
rejection later. This module is the seam: a registry answers "is this number blocked for this
kind of message". The sandbox registry holds the magic number of API.md, so sandbox keys can
exercise the path; the imported registry (bulk DND lists) plugs in behind the same call.
"""

from __future__ import annotations

from collections.abc import Iterable

from dakghar.core.message import MessageType

SANDBOX_DND = frozenset({"+917000000004"})


class DndRegistry:
    """Numbers on the do-not-disturb registry, for live and for sandbox traffic."""

    def __init__(self, live: Iterable[str] = (), sandbox: Iterable[str] = SANDBOX_DND) -> None:
        self.live = set(live)
        self.sandbox = frozenset(sandbox)

    def blocks(self, e164: str, mtype: MessageType, *, sandbox: bool) -> bool:
        """True when a message of ``mtype`` to ``e164`` must not be sent.

        Only promotional messages are blocked: OTP and transactional messages are allowed to
        numbers on the registry (TRAI's rules, and API.md's sandbox table).
        """
        if mtype is not MessageType.PROMOTIONAL:
            return False
        return e164 in (self.sandbox if sandbox else self.live)
