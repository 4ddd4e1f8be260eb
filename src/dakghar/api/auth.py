"""Authentication and per-key rate limiting for the REST API.

``Authorization: Bearer <key>``: the key's lookup id finds the stored hash, a constant-time HMAC
compare verifies it. Verified keys (and their account's settings) are cached for a couple of
seconds so the hot path does not read the database per request; revocations and setting changes
take effect within that time. Every authenticated call is charged to a per-key GCRA limiter.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import Request

from dakghar.core.keys import parse_key, verify_key
from dakghar.core.ratelimit import Gcra
from dakghar.errors import RateLimited, Unauthorized
from dakghar.store.base import Account, ApiKey, Store


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

    def __init__(self, store: Store, secret: bytes, *, cache_seconds: float = 2.0) -> None:
        self._store = store
        self._secret = secret
        self._ttl = cache_seconds
        self._cache: OrderedDict[str, tuple[float, Caller]] = OrderedDict()
        self._limiters: dict[tuple[int, int], Gcra] = {}

    def forget(self) -> None:
        """Drop cached keys (tests, and after key/account changes made in-process)."""
        self._cache.clear()

    async def authenticate(self, request: Request) -> Caller:
        """The caller of ``request``, or :class:`Unauthorized`; then the rate limit."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <api_key>'")
        caller = await self._lookup(token)
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

    def _limit(self, caller: Caller) -> None:
        acc = caller.account
        shape = (acc.rate_per_second, acc.rate_burst)
        limiter = self._limiters.get(shape)
        if limiter is None:
            limiter = self._limiters[shape] = Gcra(
                max(acc.rate_per_second, 1), max(acc.rate_burst, 1)
            )
        decision = limiter.hit(caller.key.id, time.monotonic())
        if not decision.allowed:
            raise RateLimited(
                f"rate limit of {acc.rate_per_second}/s per key exceeded",
                retry_after=decision.retry_after,
            )
