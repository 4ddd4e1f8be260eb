"""Kill switches as the running process sees them: global, per connector, per account.

The store is the source of truth (so every process of a scale-out deployment agrees); this
keeps a copy refreshed every sweep (about a second) and updated at once by local changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dakghar.store.base import Store


class Switchboard:
    """Cached kill-switch state."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._paused: set[tuple[str, str]] = set()
        # Called after a local change: the fleet's fan-out (``dakghar.gateway``) tells the
        # other processes, which refresh at once instead of at their next sweep.
        self.on_change: list[Callable[[str, str, bool], Awaitable[None]]] = []

    async def refresh(self) -> None:
        """Reload every switch from the store."""
        self._paused = {key for key, paused in (await self.store.switches()).items() if paused}

    async def set(self, scope: str, name: str, paused: bool) -> None:
        """Flip a switch in the store and locally."""
        if scope == "account":
            await self.store.update_account(name, sending_paused=paused)
        else:
            await self.store.set_switch(scope, name, paused)
        (self._paused.add if paused else self._paused.discard)((scope, name))
        for notify in self.on_change:
            await notify(scope, name, paused)

    @property
    def global_paused(self) -> bool:
        """Is all sending off?"""
        return ("global", "*") in self._paused

    def connector_paused(self, name: str) -> bool:
        """Is this connector switched off?"""
        return ("connector", name) in self._paused

    def account_paused(self, account_id: str) -> bool:
        """Is this account's sending switched off?"""
        return ("account", account_id) in self._paused

    def snapshot(self) -> list[dict[str, str]]:
        """Every paused switch."""
        return [{"scope": s, "name": n} for s, n in sorted(self._paused)]
