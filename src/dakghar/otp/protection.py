"""Abuse limits for OTP sends: per number, per account, and SMS-pumping velocity per number range.

SMS pumping ("toll fraud") drives an app's OTP form to send codes to number ranges the attacker
earns from (premium or sequential numbers). Its signature is many *distinct* numbers in one
small range in a short time, which real users almost never produce: the range here is the E.164
number without its last ``prefix_digits`` digits (a block of 1,000 numbers by default). The
per-key request limit is the API's own (``api.auth``), charged on every call before this.

State is in memory (one process: the embedded default), with the same GCRA arithmetic as the
API limits; time is passed in, so the limits are deterministic under test. In a fleet with Redis
(``shared``: ``coord.base.Limiter``), the same three checks run on the shared counters, so an
attacker spreading requests over the API processes meets one limit (``check``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from dakghar.core.ratelimit import Gcra
from dakghar.errors import DakgharError, RateLimited
from dakghar.store.base import Account

MAX_TRACKED_RANGES = 100_000


@dataclass(frozen=True, slots=True)
class ProtectionPolicy:
    """The limits; the defaults suit a consumer app's sign-up form."""

    number_per_minute: float = 1.0  # sustained sends (first codes and resends) to one number
    number_burst: int = 4  # a first code and three resends may come close together
    prefix_digits: int = 3  # a "range" is the number without its last digits
    prefix_window_seconds: float = 60.0
    prefix_max_numbers: int = 5  # distinct numbers of one range per window per account


class Protection:
    """Admits or refuses OTP sends; counts refusals by reason for the metrics."""

    def __init__(self, policy: ProtectionPolicy | None = None, shared: Any = None) -> None:
        self.policy = policy or ProtectionPolicy()
        self.shared = shared  # coord.base.Limiter of the fleet, or None: this process counts
        self._numbers = Gcra(self.policy.number_per_minute / 60.0, self.policy.number_burst)
        self._accounts: dict[tuple[int, int], Gcra] = {}
        self._ranges: dict[str, dict[str, float]] = {}
        self.blocks: Counter[str] = Counter()

    async def check(self, account: Account, e164: str, now: float, *, new_number: bool) -> None:
        """:meth:`admit` on the fleet's shared counters when there are any (a shared limiter
        that does not answer falls back to this process's own counters)."""
        if self.shared is None:
            self.admit(account, e164, now, new_number=new_number)
            return
        try:
            await self._check_shared(account, e164, new_number=new_number)
        except RateLimited:
            raise
        except DakgharError:  # the coordinator is away: count here, as without it
            self.admit(account, e164, now, new_number=new_number)

    async def _check_shared(self, account: Account, e164: str, *, new_number: bool) -> None:
        from dakghar.coord.base import LimitCheck

        policy, shared = self.policy, self.shared
        key = f"otp-range:{account.id}:{e164[: -policy.prefix_digits]}"
        window, most = policy.prefix_window_seconds, policy.prefix_max_numbers
        if new_number:
            ok, retry = await shared.distinct(key, e164, window, most, add=False)
            if not ok:
                self._pumping(e164, most, retry)
        by_account, by_number = await shared.limit_many(
            [
                LimitCheck(f"otp-account:{account.id}", max(account.rate_per_second, 1),
                           max(account.rate_burst, 1)),
                LimitCheck(f"otp-number:{account.id}:{e164}", policy.number_per_minute / 60.0,
                           policy.number_burst),
            ]
        )  # fmt: skip
        if not by_account.allowed:
            self.blocks["account"] += 1
            raise RateLimited(
                f"too many OTP sends for this account (limit {account.rate_per_second}/s)",
                retry_after=by_account.retry_after,
            )
        if not by_number.allowed:
            self._too_many_codes(by_number.retry_after)
        if new_number:
            await shared.distinct(key, e164, window, most, add=True)

    def _too_many_codes(self, retry_after: float) -> None:
        self.blocks["number"] += 1
        raise RateLimited(
            f"too many codes sent to this number; at most {self.policy.number_burst} at "
            f"once, then {self.policy.number_per_minute:g} per minute",
            retry_after=retry_after,
        )

    def _pumping(self, e164: str, seen: int, retry_after: float) -> None:
        self.blocks["prefix"] += 1
        digits = self.policy.prefix_digits
        masked = e164[:-digits] + "x" * digits
        raise RateLimited(
            f"SMS pumping protection: codes went to {seen} different numbers in the range "
            f"{masked} within {self.policy.prefix_window_seconds:g} s; more numbers of this "
            "range are refused for a while",
            retry_after=retry_after,
        )

    def admit(self, account: Account, e164: str, now: float, *, new_number: bool) -> None:
        """Charge one send to ``e164`` or raise :class:`RateLimited` (``Retry-After`` set).

        ``new_number`` is True for a new verification (counts toward its range's velocity),
        False for a resend of an existing one.
        """
        key = f"{account.id}:{e164[: -self.policy.prefix_digits]}"
        if new_number:
            self._check_range(key, e164, now)
        decision = self._account_limiter(account).hit(account.id, now)
        if not decision.allowed:
            self.blocks["account"] += 1
            raise RateLimited(
                f"too many OTP sends for this account (limit {account.rate_per_second}/s)",
                retry_after=decision.retry_after,
            )
        decision = self._numbers.hit(f"{account.id}:{e164}", now)
        if not decision.allowed:
            self._too_many_codes(decision.retry_after)
        if new_number:
            self._ranges.setdefault(key, {})[e164] = now

    def _account_limiter(self, account: Account) -> Gcra:
        shape = (max(account.rate_per_second, 1), max(account.rate_burst, 1))
        limiter = self._accounts.get(shape)
        if limiter is None:
            limiter = self._accounts[shape] = Gcra(*shape)
        return limiter

    def _check_range(self, key: str, e164: str, now: float) -> None:
        window = self.policy.prefix_window_seconds
        seen = self._ranges.get(key)
        if seen is None:
            if len(self._ranges) >= MAX_TRACKED_RANGES:
                self._forget_stale(now)
            return
        for number, at in list(seen.items()):
            if at <= now - window:
                del seen[number]
        if e164 in seen or len(seen) < self.policy.prefix_max_numbers:
            return
        self._pumping(e164, len(seen), min(seen.values()) + window - now)

    def _forget_stale(self, now: float) -> None:
        cutoff = now - self.policy.prefix_window_seconds
        stale = [k for k, seen in self._ranges.items() if not seen or max(seen.values()) <= cutoff]
        for key in stale:
            del self._ranges[key]
        if len(self._ranges) >= MAX_TRACKED_RANGES:
            self._ranges.clear()
