"""A DNS resolver for webhook delivery that drops addresses Dakghar must not connect to.

Checking a callback's host name when it is set is not enough: the name may resolve to a public
address then and to 127.0.0.1 at delivery (DNS rebinding), or to a private address from the
start (``127.0.0.1.nip.io``). The webhook client (``webhooks/client.py``) connects only to what
this resolver returns, address literals included, so filtering here means the address checked is
the address connected to, with no window between the two.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Collection
from ipaddress import ip_address

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from dakghar.webhooks.urls import address_refusal


class RefusedAddress(OSError):
    """Every address a callback host resolved to is refused.

    An ``OSError``, like any failed look-up, which the sender records as a failed attempt.
    """

    def __init__(self, message: str) -> None:
        # An OSError's text shows ``strerror``, which only the two-argument form sets.
        super().__init__(errno.EACCES, message)


class GuardedResolver(AbstractResolver):
    """Wraps a resolver (aiohttp's default unless given) and filters what it returns."""

    def __init__(
        self,
        inner: AbstractResolver | None = None,
        *,
        allow_private: bool = False,
        own: Collection[tuple[str, int]] = (),
    ) -> None:
        self.inner = inner or DefaultResolver()
        self.allow_private = allow_private
        self.own = own

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The resolved addresses Dakghar may connect to; ``RefusedAddress`` if none."""
        results = await self.inner.resolve(host, port, family)
        if self.allow_private:
            return results
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for result in results:
            reason = _refusal(result["host"], port, self.own)
            if reason is None:
                allowed.append(result)
            else:
                refused.append(f"{reason} {result['host']}")
        if not allowed:
            # Only drop-all is an error: a name with one public and one private address is
            # reached on the public one, never on the private one.
            raise RefusedAddress(f"{host} resolves only to refused addresses: {', '.join(refused)}")
        return allowed

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self.inner.close()


def _refusal(address: str, port: int, own: Collection[tuple[str, int]]) -> str | None:
    try:
        ip = ip_address(address.split("%", 1)[0])  # fe80::1%eth0: the zone is not the address
    except ValueError:
        return "unparsable"  # a resolver answering something that is not an address: refuse
    return address_refusal(ip, port, own)
