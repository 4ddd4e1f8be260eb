"""The do-not-disturb check made before a promotional message is accepted.

India's TRAI registry (NCPR) forbids promotional messages to numbers registered on it, unless
the subscriber's preferences accept the message's category; a gateway that checks before
queueing gives the application an honest 422 at once instead of a carrier rejection later.
A registry answers "is this number blocked for this kind of message" from three sources: the
sandbox's magic number of API.md (sandbox traffic only), the imported national list
(``compliance.dnd``, a file beside the database, reopened when a new import replaces it), and
the account's own suppression list (opt-outs, ``compliance.optout``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from dakghar.compliance.dnd import DndFile, category_number
from dakghar.core.message import MessageType

SANDBOX_DND = frozenset({"+917000000004"})
_RECHECK_S = 1.0

Suppressed = Callable[[str, str], bool]  # (account id, e164) -> opted out


class DndRegistry:
    """Numbers on the do-not-disturb registry, for live and for sandbox traffic."""

    def __init__(
        self,
        live: Iterable[str] = (),
        sandbox: Iterable[str] = SANDBOX_DND,
        *,
        path: Path | None = None,
        suppressed: Suppressed | None = None,
    ) -> None:
        self.live = set(live)
        self.sandbox = frozenset(sandbox)
        self.path = path
        self.suppressed = suppressed
        self._file: DndFile | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0

    def national(self) -> DndFile | None:
        """The imported list, reopened when the file changed (checked at most once a second)."""
        now = time.monotonic()
        if self.path is None or now - self._checked < _RECHECK_S:
            return self._file
        self._checked = now
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._file, self._stamp = None, None
            return None
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp != self._stamp:
            self._file, self._stamp = DndFile(self.path), stamp
        return self._file

    def blocks(
        self,
        e164: str,
        mtype: MessageType,
        *,
        sandbox: bool,
        account_id: str | None = None,
        category: str | None = None,
    ) -> bool:
        """True when a message of ``mtype`` to ``e164`` must not be sent.

        Only promotional messages are blocked: OTP and transactional messages are allowed to
        numbers on the registry (TRAI's rules, and API.md's sandbox table). A listed number
        still receives promotions of a ``category`` its preferences accept.
        """
        if mtype is not MessageType.PROMOTIONAL:
            return False
        if account_id and self.suppressed is not None and self.suppressed(account_id, e164):
            return True
        if sandbox:
            return e164 in self.sandbox
        if e164 in self.live:
            return True
        registry = self.national()
        if registry is None:
            return False
        mask = registry.preferences(e164)
        if mask is None:
            return False
        wanted = category_number(category)
        return wanted is None or not mask & (1 << (wanted - 1))
