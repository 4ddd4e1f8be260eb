"""Authentication and per-key rate limiting for the REST API.

``Authorization: Bearer <key>``: the key's lookup id finds the stored hash, a constant-time HMAC
compare verifies it. Verified keys (and their account's settings) are cached for a couple of
seconds so the hot path does not read the database per request; revocations and setting changes
take effect within that time, or at once in every process of a fleet with Redis (the revoking
process publishes, ``dakghar.gateway`` forgets). Every authenticated call is charged to a per-key
GCRA limiter: this process's own, or the fleet's shared one (``coord.Limiter``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from dakghar.core.keys import parse_key, verify_key
from dakghar.core.ratelimit import Decision, Gcra
from dakghar.errors import DakgharError, RateLimited, Unauthorized
from dakghar.store.base import Account, ApiKey, Store


class SharedLimiter(Protocol):
    """The fleet's limiter (``coord.base.Limiter``), as the API uses it."""

    async def limit(self, key: str, rate: float, burst: int) -> Decision:
        """Count one request for ``key``."""
        ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key and its account."""

    key: ApiKey
    account: Account

    @property
    def sandbox(self) -> bool:
        """True for ``test_`` keys: simulator only, never billed."""
        return self.key.mode == "test"


class Authenticator:
    """Verifies keys, caches them briefly, and applies per-key rate limits."""

    def __init__(
        self,
        store: Store,
        secret: bytes,
        *,
        cache_seconds: float = 2.0,
        limiter: SharedLimiter | None = None,
    ) -> None:
        self._store = store
        self._secret = secret
        self._ttl = cache_seconds
        self._cache: OrderedDict[str, tuple[float, Caller]] = OrderedDict()
        self._limiters: dict[tuple[int, int], Gcra] = {}
        # The fleet's limiter (Redis): a key's rate is counted across every API process.
        # Without it, or while it does not answer, each process counts on its own.
        self._shared = limiter

    def forget(self) -> None:
        """Drop cached keys (tests, and after key/account changes made in-process)."""
        self._cache.clear()

    def forget_key(self, key_id: str) -> None:
        """Drop the cached verification of one key (revoked in another process)."""
        for token in [t for t, (_, c) in self._cache.items() if c.key.id == key_id]:
            del self._cache[token]

    def forget_account(self, account_id: str) -> None:
        """Drop cached keys of one account (its settings changed in another process)."""
        for token in [t for t, (_, c) in self._cache.items() if c.account.id == account_id]:
            del self._cache[token]

    async def authenticate(self, request: Request) -> Caller:
        """The caller of ``request``, or :class:`Unauthorized`; then the rate limit."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <api_key>'")
        caller = await self._lookup(token)
        if self._shared is not None:
            await self._limit_shared(caller)
        else:
            self._limit(caller)
        return caller

    async def _lookup(self, token: str) -> Caller:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        parsed = parse_key(token)
        if parsed is None:
            raise Unauthorized("unknown or revoked API key")
        key = await self._store.get_api_key(parsed[1])
        if (
            key is None
            or key.revoked_at is not None
            or not verify_key(self._secret, token, key.key_hash)
        ):
            raise Unauthorized("unknown or revoked API key")
        account = await self._store.get_account(key.account_id)
        if account is None:
            raise Unauthorized("unknown or revoked API key")
        caller = Caller(key, account)
        self._cache[token] = (now + self._ttl, caller)
        if len(self._cache) > 10_000:
            self._cache.popitem(last=False)
        return caller

    async def _limit_shared(self, caller: Caller) -> None:
        acc = caller.account
        assert self._shared is not None
        try:
            decision = await self._shared.limit(
                "key:" + caller.key.id, max(acc.rate_per_second, 1), max(acc.rate_burst, 1)
            )
        except DakgharError:  # the shared limiter is away: this process counts alone
            self._limit(caller)
            return
        _enforce(caller, decision)

    def _limit(self, caller: Caller) -> None:
        acc = caller.account
        shape = (acc.rate_per_second, acc.rate_burst)
        limiter = self._limiters.get(shape)
        if limiter is None:
            limiter = self._limiters[shape] = Gcra(
                max(acc.rate_per_second, 1), max(acc.rate_burst, 1)
            )
        _enforce(caller, limiter.hit(caller.key.id, time.monotonic()))


def _enforce(caller: Caller, decision: Decision) -> None:
    """Refuse with 429 when the key's limiter (this process's or the fleet's) said no."""
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {caller.account.rate_per_second}/s per key exceeded",
            retry_after=decision.retry_after,
        )
