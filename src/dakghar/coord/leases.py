"""Holding one SMPP bind slot for as long as the bind is open: acquire, renew, release.

A connector that may open ``slots`` binds fleet-wide runs one ``BindLease`` per bind it wants to
open: no slot, no bind. Renewal runs every third of the TTL. ``lost`` is set, and the bind
closes, when the coordinator says another process holds the slot.

When the coordinator does not answer (Redis down or restarting), an open bind stays open and
keeps sending: while Redis is away no process can take a slot, so the fleet cannot gain a bind,
and closing every bind would make Redis, which holds only what may be lost, a single point of
failure for delivery. Renewal retries every twelfth of the TTL; once Redis answers again, each
holder takes its slot back (a slot nobody holds is taken again), and a process that saw Redis
away waits one TTL before taking a new slot (``RedisCoordinator.acquire_bind``). The cost, said
plainly: across a partition that cuts one process off Redis while the others reach it, its
binds outlive its lease, and one more bind than the contract may be attempted; carriers refuse
a bind past their limit, and the connector retries it later. Nothing is lost either way.
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
        self.unconfirmed = False  # held through a coordinator outage, not renewed since
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
                if self.unconfirmed:
                    log.info("bind lease confirmed again", connector=self.connector,
                             slot=self.slot, away_s=round(now - self._renewed_at, 1))  # fmt: skip
                self._renewed_at, interval, self.unconfirmed = now, self.ttl / 3, False
                continue
            if held is False:
                log.warning(
                    "bind lease lost", connector=self.connector, slot=self.slot, owner=self.owner
                )
                self.lost.set()
                return
            if not self.unconfirmed and now - self._renewed_at >= self.ttl * 2 / 3:
                log.warning("coordinator away; keeping the bind until it answers",
                            connector=self.connector, slot=self.slot)  # fmt: skip
                self.unconfirmed = True
            interval = self.ttl / 12  # coordinator down: retry sooner, to take the slot back

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
