"""Holding one SMPP bind slot for as long as the bind is open: acquire, renew, release.

A connector that may open ``slots`` binds fleet-wide runs one ``BindLease`` per bind it wants to
open: no slot, no bind. Renewal runs every third of the TTL. When renewals fail (the slot was
lost, or the coordinator does not answer) for two thirds of the TTL, ``lost`` is set before the
lease can have expired on the server, so the bind closes before another process can take its
slot: the fleet never holds more binds than the contract allows, even across a partition.
Neighbours: ``coord.base.BindLeases`` (the calls), ``connectors`` (the binds, wired by the lead).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from dakghar.coord.base import BindLeases, CoordinationUnavailable
from dakghar.observability.logging import get_logger

log = get_logger("dakghar.coord")


class BindLease:
    """One bind slot of ``connector``, held by ``owner`` (unique per bind, e.g. host/pid/n)."""

    def __init__(
        self, leases: BindLeases, connector: str, slots: int, owner: str, ttl: float = 10.0
    ) -> None:
        self.leases = leases
        self.connector = connector
        self.slots = slots
        self.owner = owner
        self.ttl = ttl
        self.slot: int | None = None
        self.lost = asyncio.Event()
        self._renewed_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def acquire(self) -> int | None:
        """Try once for a free slot; on success keep it renewed until ``release``."""
        if self.slot is not None and not self.lost.is_set():
            return self.slot
        self.slot = await self.leases.acquire_bind(self.connector, self.slots, self.owner, self.ttl)
        if self.slot is not None:
            self.lost.clear()
            self._stopping = False
            self._renewed_at = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(self._renew())
        return self.slot

    async def _renew(self) -> None:
        assert self.slot is not None
        interval = self.ttl / 3
        # The flag as well as the cancel: on Python 3.11 a cancel that lands as a call inside
        # redis-py completes can be swallowed, and the loop must end all the same.
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                held = await self.leases.renew_bind(self.connector, self.slot, self.owner, self.ttl)
            except Exception as exc:  # any failure counts against the margin, none ends the loop
                if not isinstance(exc, CoordinationUnavailable):
                    log.exception("bind lease renewal failed", connector=self.connector)
                held = None
            now = time.monotonic()
            if held:
                self._renewed_at, interval = now, self.ttl / 3
                continue
            if held is False or now - self._renewed_at >= self.ttl * 2 / 3:
                log.warning(
                    "bind lease lost", connector=self.connector, slot=self.slot, owner=self.owner
                )
                self.lost.set()
                return
            interval = self.ttl / 12  # coordinator down: retry sooner, inside the margin

    async def release(self) -> None:
        """Stop renewing and give the slot back (if the coordinator answers)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=self.ttl)
            self._task = None
        if self.slot is not None and not self.lost.is_set():
            with contextlib.suppress(CoordinationUnavailable):
                await self.leases.release_bind(self.connector, self.slot, self.owner)
        self.slot = None
