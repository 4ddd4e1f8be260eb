"""What the API side knows of the delivery side, wherever the delivery side runs.

The API (``GET /v1/connectors``, the dashboard, ``/readyz``, alerts, provider callbacks) needs
the dispatcher's state and a way to settle delivery reports. When the dispatcher runs in the
same process, :class:`LocalDelivery` asks it directly. When it runs in a process of its own
(``dakghar serve``'s default), :class:`RemoteDelivery` reads the state snapshot that process
writes every second, and settles reports through the store, which any process may do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from dakghar.store.base import MessageRow, StatusChange, Store

if TYPE_CHECKING:  # kept light: `dakghar status` reads snapshots without the SMPP stack
    from dakghar.connectors.base import Connector, Report
    from dakghar.pipeline.dispatcher import Dispatcher

STALE_AFTER = 10.0  # seconds without a fresh snapshot: the delivery process is not running


class DeliveryView(Protocol):
    """The delivery side as the API sees it."""

    @property
    def ready(self) -> bool:
        """A connector can take live traffic (or the simulator, when there is none)."""

    @property
    def connector_names(self) -> set[str]:
        """Every connector's name, the simulator's included."""

    @property
    def connectors(self) -> Mapping[str, Connector]:
        """Connector objects this process holds (for parsing provider callbacks)."""

    def state(self) -> dict[str, Any]:
        """Dispatcher, connector and breaker state."""

    async def report(self, connector: str, report: Report) -> MessageRow | None:
        """Settle a delivery report."""


class LocalDelivery:
    """The dispatcher in this process."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @property
    def ready(self) -> bool:
        return self.dispatcher.ready

    @property
    def connector_names(self) -> set[str]:
        return set(self.dispatcher.connectors)

    @property
    def connectors(self) -> Mapping[str, Connector]:
        return self.dispatcher.connectors

    def state(self) -> dict[str, Any]:
        return self.dispatcher.state()

    async def report(self, connector: str, report: Report) -> MessageRow | None:
        return await self.dispatcher.report(connector, report)


def read_snapshot(path: Path, stale_after: float = STALE_AFTER) -> dict[str, Any] | None:
    """The delivery process's last snapshot, or None when missing, unreadable or stale."""
    try:
        state = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    if not isinstance(state, dict) or time.time() - float(state.get("at", 0)) > stale_after:
        return None
    return state


class RemoteDelivery:
    """A dispatcher in another process, seen through its snapshot file and the store."""

    def __init__(
        self, store: Store, state_path: Path, connectors: Mapping[str, Connector], names: set[str]
    ) -> None:
        self.store = store
        self.state_path = state_path
        self._connectors = connectors
        self._names = names
        self._cache: tuple[float, dict[str, Any] | None] = (0.0, None)

    def _snapshot(self) -> dict[str, Any] | None:
        at, snap = self._cache
        if time.monotonic() - at > 0.25:  # /readyz may be polled hard: read at most 4 times/s
            snap = read_snapshot(self.state_path)
            self._cache = (time.monotonic(), snap)
        return snap

    @property
    def ready(self) -> bool:
        snap = self._snapshot()
        return bool(snap and snap.get("ready"))

    @property
    def connector_names(self) -> set[str]:
        return self._names

    @property
    def connectors(self) -> Mapping[str, Connector]:
        return self._connectors

    def state(self) -> dict[str, Any]:
        snap = self._snapshot()
        if snap is None:
            return {"connectors": {}, "running": False}
        return {k: v for k, v in snap.items() if k not in ("at", "ready")}

    async def report(self, connector: str, report: Report) -> MessageRow | None:
        change = StatusChange("", report.status, error_code=report.error_code,
                              detail=report.detail, at=report.at)  # fmt: skip
        return await self.store.report(connector, report.provider_id, change)
