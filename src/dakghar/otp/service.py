"""The OTP verification service: send a code, resend it, check it.

A code comes from ``secrets`` and is stored only as ``HMAC-SHA256(server secret, id + code)``;
a check compares in constant time inside one atomic store operation (``Store.check_otp``), so
racing wrong guesses never get more tries than ``attempts_left``. Every code travels as a normal
message of type ``otp`` through :class:`~dakghar.pipeline.accept.Acceptor` (the most urgent
lane); the message row carries a masked twin of its text that replaces the clear one once a
carrier has it. A resend whose previous message was not delivered starts one connector further
along the route (the guide's fallback). Abuse limits live in :mod:`dakghar.otp.protection`.

The clock is injectable (wall-clock seconds), so expiry and cooldowns are testable without sleep.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from dakghar.core.ids import new_id
from dakghar.core.message import Status
from dakghar.core.numbers import mask, parse_number
from dakghar.errors import Conflict, InsufficientCredits, NotFound, RateLimited, ValidationError
from dakghar.observability.logging import get_logger
from dakghar.otp import templates
from dakghar.otp.protection import Protection
from dakghar.pipeline.accept import Acceptor, Draft
from dakghar.store.base import (
    AcceptOutcome,
    Account,
    IdempotencyRecord,
    MessageRow,
    OtpVerification,
    Store,
    now_ms,
)

log = get_logger("dakghar.otp")

MIN_LENGTH, MAX_LENGTH = 4, 10
MIN_TTL, MAX_TTL = 60, 3600
APPROVE_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True, slots=True)
class OtpPolicy:
    """Fixed rules of every verification."""

    attempts: int = 5
    max_resends: int = 3
    # Wait before resend n+1 (seconds): the cooldown grows with every resend.
    resend_cooldowns: tuple[float, ...] = (30.0, 60.0, 120.0)
    expiry_sweep_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class OtpRequest:
    """What the application asks for (``POST /v1/otp``)."""

    to: str
    sender: str | None = None
    template: str = templates.DEFAULT_TEMPLATE
    length: int = 6
    ttl_seconds: int = 300
    template_id: str | None = None


@dataclass(frozen=True, slots=True)
class OtpSent:
    """A sent verification and its message, or the stored first response of a replay."""

    verification: OtpVerification
    message: MessageRow | None
    replay: IdempotencyRecord | None = None


# Renders the API response for a new verification, stored with its Idempotency-Key.
OtpRenderer = Callable[[OtpVerification], str]


def _field_error(field: str, detail: str) -> ValidationError:
    return ValidationError(detail, errors=[{"field": field, "code": "validation_error"}])


def check_request(req: OtpRequest) -> None:
    """Refuse lengths, lifetimes and templates outside the rules (422 ``validation_error``)."""
    if not MIN_LENGTH <= req.length <= MAX_LENGTH:
        raise _field_error("length", f"length must be {MIN_LENGTH} to {MAX_LENGTH} digits")
    if not MIN_TTL <= req.ttl_seconds <= MAX_TTL:
        raise _field_error("ttl_seconds", f"ttl_seconds must be {MIN_TTL} to {MAX_TTL}")
    templates.check_template(req.template)


class OtpService:
    """Sends, resends and checks codes; counts the conversion funnel for the metrics."""

    def __init__(
        self,
        store: Store,
        acceptor: Acceptor,
        secret: bytes,
        *,
        policy: OtpPolicy | None = None,
        protection: Protection | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.acceptor = acceptor
        self.policy = policy or OtpPolicy()
        if len(self.policy.resend_cooldowns) < self.policy.max_resends:
            raise ValueError("resend_cooldowns needs one entry per allowed resend")
        self.protection = protection or Protection()
        self.clock = clock
        self._secret = secret
        self._last_sweep = 0
        self.counts: Counter[str] = Counter()
        self._approve_buckets = [0] * (len(APPROVE_BUCKETS) + 1)
        self._approve_sum = 0.0

    # -- sending ------------------------------------------------------------------------------

    async def send(
        self,
        account: Account,
        req: OtpRequest,
        *,
        sandbox: bool,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        render: OtpRenderer | None = None,
    ) -> OtpSent:
        """Start a verification: a new code in a new ``otp`` message."""
        check_request(req)
        self.acceptor.check_open(account)
        await self.acceptor.prepare(account)
        now = self._now_ms()
        otp_id = new_id("otp")
        code = self._new_code(req.length)
        row = self._message(account, req, code, sandbox=sandbox, route_step=0)
        self.protection.admit(account, row.to_number, now / 1000, new_number=True)
        otp = OtpVerification(
            id=otp_id,
            account_id=account.id,
            to_number=row.to_number,
            code_hash=self.code_hash(otp_id, code),
            status="pending",
            attempts_left=self.policy.attempts,
            resends=0,
            resend_after=self._resend_after(0, now),
            expires_at=now + req.ttl_seconds * 1000,
            message_id=row.id,
            code_length=req.length,
            ttl_seconds=req.ttl_seconds,
            template=req.template,
            template_id=req.template_id,
            sender=row.sender,
            created_at=now,
            updated_at=now,
            approved_at=None,
        )
        await self._sweep(now)
        self.counts["expired"] += await self.store.create_otp(otp)

        def rendered(outcome: AcceptOutcome) -> tuple[int, str] | None:
            return (201, render(otp)) if render is not None and outcome.accepted else None

        outcome = await self.acceptor.write(
            account,
            [row],
            sandbox=sandbox,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            render=rendered,
        )
        if outcome.replay is not None or not outcome.accepted:
            await self.store.delete_otp(account.id, otp_id)
            if outcome.replay is not None:
                return OtpSent(otp, None, outcome.replay)
            raise self._no_credit(outcome.balance_milli, row)
        self.counts["sent"] += 1
        log.info("otp sent", otp_id=otp_id, message_id=row.id, masked_to=mask(row.to_number))
        return OtpSent(otp, outcome.accepted[0])

    async def resend(self, account: Account, otp_id: str, *, sandbox: bool) -> OtpVerification:
        """A new code in a new message, after the cooldown, at most ``max_resends`` times."""
        now = self._now_ms()
        otp = await self._get(account, otp_id)
        self._ensure_resendable(otp, now)
        self.acceptor.check_open(account)
        await self.acceptor.prepare(account)
        step = 0
        if otp.message_id is not None:
            previous = await self.store.get_message(account.id, otp.message_id)
            if previous is not None:
                delivered = previous.status == Status.DELIVERED.value
                step = previous.route_step + (0 if delivered else 1)
        req = OtpRequest(
            to=otp.to_number,
            sender=otp.sender,
            template=otp.template,
            length=otp.code_length,
            ttl_seconds=otp.ttl_seconds,
            template_id=otp.template_id,
        )
        code = self._new_code(otp.code_length)
        row = self._message(account, req, code, sandbox=sandbox, route_step=step)
        if row.price_milli > account.balance_milli:
            # Refuse before the old code is replaced; the write below re-checks atomically.
            raise self._no_credit(account.balance_milli, row)
        self.protection.admit(account, otp.to_number, now / 1000, new_number=False)
        updated = await self.store.resend_otp(
            account.id,
            otp.id,
            resends=otp.resends,
            code_hash=self.code_hash(otp.id, code),
            message_id=row.id,
            resend_after=self._resend_after(otp.resends + 1, now),
            expires_at=now + otp.ttl_seconds * 1000,
            now=now,
        )
        if updated is None:  # something changed since we read it: answer from the new state
            self._ensure_resendable(await self._get(account, otp_id), now)
            raise RateLimited("another resend of this verification is in progress")
        outcome = await self.acceptor.write(account, [row], sandbox=sandbox)
        if not outcome.accepted:
            raise self._no_credit(outcome.balance_milli, row)
        self.counts["resent"] += 1
        log.info(
            "otp resent",
            otp_id=otp.id,
            message_id=row.id,
            masked_to=mask(otp.to_number),
            resends=updated.resends,
            route_step=step,
        )
        return updated

    # -- checking -----------------------------------------------------------------------------

    async def check(
        self, account: Account, code: str, *, otp_id: str | None = None, to: str | None = None
    ) -> OtpVerification:
        """Try ``code`` against a verification, by its id or the newest one for ``to``."""
        if (otp_id is None) == (to is None):
            raise _field_error("id", "give either 'id' or 'to' (not both) with the code")
        if not (code.isascii() and code.isdigit() and MIN_LENGTH <= len(code) <= MAX_LENGTH):
            raise _field_error("code", f"code must be {MIN_LENGTH} to {MAX_LENGTH} digits")
        number = None
        if to is not None:
            number = parse_number(to, default_region=account.default_region).e164
        now = self._now_ms()
        result = await self.store.check_otp(
            account.id,
            otp_id=otp_id,
            to_number=number,
            matches=lambda v: hmac.compare_digest(self.code_hash(v.id, code), v.code_hash),
            now=now,
        )
        if result is None:
            what = f"{otp_id!r}" if otp_id is not None else "for this number"
            raise NotFound(f"no verification {what} on this account")
        otp = result.verification
        if result.outcome == "closed" and otp.status == "approved":
            raise Conflict("this verification is already approved; a code can be used only once")
        self._count_check(result.outcome, otp)
        log.info("otp checked", otp_id=otp.id, outcome=result.outcome, left=otp.attempts_left)
        return otp

    # -- metrics ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The conversion funnel and protection counters, for the Prometheus exporter.

        ``time_to_approve_seconds`` is a cumulative histogram (``buckets`` maps each upper
        bound, then ``+Inf``, to the count of approvals at or below it).
        """
        cumulative, total = {}, 0
        for bound, n in zip((*APPROVE_BUCKETS, float("inf")), self._approve_buckets, strict=True):
            total += n
            cumulative["+Inf" if bound == float("inf") else f"{bound:g}"] = total
        return {
            "sent": self.counts["sent"],
            "resent": self.counts["resent"],
            "approved": self.counts["approved"],
            "expired": self.counts["expired"],
            "failed": self.counts["failed"],
            "wrong_codes": self.counts["wrong"],
            "blocked": dict(self.protection.blocks),
            "time_to_approve_seconds": {
                "count": total,
                "sum": self._approve_sum,
                "buckets": cumulative,
            },
        }

    # -- internals ----------------------------------------------------------------------------

    def code_hash(self, otp_id: str, code: str) -> str:
        """What is stored of a code: an HMAC with the server secret, bound to its verification."""
        return hmac.new(self._secret, f"{otp_id}\0{code}".encode(), hashlib.sha256).hexdigest()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @staticmethod
    def _new_code(length: int) -> str:
        return f"{secrets.randbelow(10**length):0{length}d}"

    def _resend_after(self, resends: int, now: int) -> int | None:
        if resends >= self.policy.max_resends:
            return None
        return now + int(self.policy.resend_cooldowns[resends] * 1000)

    def _message(
        self, account: Account, req: OtpRequest, code: str, *, sandbox: bool, route_step: int
    ) -> MessageRow:
        draft = Draft(
            to=req.to,
            body=templates.render(req.template, code, req.ttl_seconds),
            sender=req.sender,
            type="otp",
            template_id=req.template_id,
            validity_seconds=req.ttl_seconds,
        )
        row = self.acceptor.build(draft, account, sandbox=sandbox, now=now_ms())
        redacted = templates.masked(req.template, req.length, req.ttl_seconds)
        return replace(row, redacted_body=redacted, route_step=route_step)

    @staticmethod
    def _no_credit(balance_milli: int, row: MessageRow) -> InsufficientCredits:
        return InsufficientCredits(
            f"balance {balance_milli / 1000:g} cannot cover {row.price_milli / 1000:g} credits"
        )

    async def _get(self, account: Account, otp_id: str) -> OtpVerification:
        otp = await self.store.get_otp(account.id, otp_id)
        if otp is None:
            raise NotFound(f"no verification {otp_id!r} on this account")
        return otp

    def _ensure_resendable(self, otp: OtpVerification, now: int) -> None:
        if otp.status != "pending" or now >= otp.expires_at:
            state = "expired" if otp.status == "pending" else otp.status
            raise Conflict(f"this verification is {state}; start a new one with POST /v1/otp")
        if otp.resend_after is None:
            raise RateLimited(
                f"a verification may be resent at most {self.policy.max_resends} times; "
                "start a new one with POST /v1/otp",
                retry_after=(otp.expires_at - now) / 1000,
            )
        if now < otp.resend_after:
            wait = (otp.resend_after - now) / 1000
            raise RateLimited(f"a new code can be sent in {wait:.0f} s", retry_after=wait)

    def _count_check(self, outcome: str, otp: OtpVerification) -> None:
        if outcome in ("wrong", "failed"):
            self.counts["wrong"] += 1
        if outcome in ("approved", "expired", "failed"):
            self.counts[outcome] += 1
        if outcome == "approved" and otp.approved_at is not None:
            seconds = max(0.0, (otp.approved_at - otp.created_at) / 1000)
            self._approve_sum += seconds
            index = next(
                (i for i, b in enumerate(APPROVE_BUCKETS) if seconds <= b), len(APPROVE_BUCKETS)
            )
            self._approve_buckets[index] += 1

    async def _sweep(self, now: int) -> None:
        """Expire forgotten verifications now and then, so ``expired`` counts them too."""
        if now - self._last_sweep < self.policy.expiry_sweep_seconds * 1000:
            return
        self._last_sweep = now
        self.counts["expired"] += await self.store.expire_otps(now)
