"""The OTP half of the SQLite store: verifications, atomic checks and resends.

A mixin of :class:`SqliteStore`. Every change is one group-commit operation, and every update
is conditional on the state it was decided from (``status = 'pending'``, ``attempts_left > 0``,
the resend count), so the rule "a wrong code takes one attempt, and no more tries than attempts
are left" holds however many checks race, on this writer or a database shared by many.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from dakghar.store.base import OTP_COLUMNS, OtpCheck, OtpVerification
from dakghar.store.sql import Conn

T = TypeVar("T")

_SELECT = f"SELECT {', '.join(OTP_COLUMNS)} FROM otp_verifications"
_INSERT = (
    f"INSERT INTO otp_verifications ({', '.join(OTP_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in OTP_COLUMNS)})"
)


def _otp(row: tuple[Any, ...] | None) -> OtpVerification | None:
    return OtpVerification(*row) if row is not None else None


def _find(
    c: Conn, account_id: str, otp_id: str | None, to_number: str | None
) -> OtpVerification | None:
    if otp_id is not None:
        row = c.execute(f"{_SELECT} WHERE id = ? AND account_id = ?", (otp_id, account_id))
    else:
        row = c.execute(
            f"{_SELECT} WHERE account_id = ? AND to_number = ? ORDER BY id DESC LIMIT 1",
            (account_id, to_number),
        )
    return _otp(row.fetchone())


def _check(
    c: Conn,
    account_id: str,
    otp_id: str | None,
    to_number: str | None,
    matches: Callable[[OtpVerification], bool],
    now: int,
) -> OtpCheck | None:
    otp = _find(c, account_id, otp_id, to_number)
    if otp is None:
        return None
    if otp.status != "pending":
        return OtpCheck(otp, "closed")
    if now >= otp.expires_at:
        c.execute(
            "UPDATE otp_verifications SET status = 'expired', updated_at = ? "
            "WHERE id = ? AND status = 'pending'",
            (now, otp.id),
        )
        otp.status, otp.updated_at = "expired", now
        return OtpCheck(otp, "expired")
    if otp.attempts_left > 0 and matches(otp):
        cur = c.execute(
            "UPDATE otp_verifications SET status = 'approved', approved_at = ?, updated_at = ? "
            "WHERE id = ? AND status = 'pending' AND attempts_left > 0",
            (now, now, otp.id),
        )
        if cur.rowcount == 1:
            otp.status, otp.approved_at, otp.updated_at = "approved", now, now
            return OtpCheck(otp, "approved")
    else:
        cur = c.execute(
            "UPDATE otp_verifications SET attempts_left = attempts_left - 1, "
            "status = CASE WHEN attempts_left <= 1 THEN 'failed' ELSE status END, updated_at = ? "
            "WHERE id = ? AND status = 'pending' AND attempts_left > 0",
            (now, otp.id),
        )
    after = _find(c, account_id, otp.id, None)
    assert after is not None
    if cur.rowcount != 1:
        return OtpCheck(after, "closed")
    return OtpCheck(after, "failed" if after.status == "failed" else "wrong")


class OtpStoreMixin:
    """OTP verifications; needs ``_write`` and ``_read`` from the store."""

    async def _write(self, op: Callable[[Conn], T], *, express: bool = False) -> T:
        raise NotImplementedError

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def create_otp(self, otp: OtpVerification) -> int:
        """Insert ``otp``; earlier pending verifications of the number stop working."""
        values = [getattr(otp, f) for f in OTP_COLUMNS]

        def op(c: Conn) -> int:
            superseded = c.execute(
                "UPDATE otp_verifications SET status = 'expired', updated_at = ? "
                "WHERE account_id = ? AND to_number = ? AND status = 'pending'",
                (otp.created_at, otp.account_id, otp.to_number),
            ).rowcount
            c.execute(_INSERT, values)
            return superseded

        return await self._write(op)

    async def get_otp(self, account_id: str, otp_id: str) -> OtpVerification | None:
        """One verification of the account."""
        return await self._read(lambda c: _find(c, account_id, otp_id, None))

    async def check_otp(
        self,
        account_id: str,
        *,
        otp_id: str | None,
        to_number: str | None,
        matches: Callable[[OtpVerification], bool],
        now: int,
    ) -> OtpCheck | None:
        """Try a code; decided and recorded in one write operation."""
        if (otp_id is None) == (to_number is None):
            raise ValueError("give exactly one of otp_id and to_number")
        return await self._write(lambda c: _check(c, account_id, otp_id, to_number, matches, now))

    async def resend_otp(
        self,
        account_id: str,
        otp_id: str,
        *,
        resends: int,
        code_hash: str,
        message_id: str,
        resend_after: int | None,
        expires_at: int,
        now: int,
    ) -> OtpVerification | None:
        """Swap in the new code and message, only from the state the caller decided on."""

        def op(c: Conn) -> OtpVerification | None:
            cur = c.execute(
                "UPDATE otp_verifications SET code_hash = ?, message_id = ?, resends = ?, "
                "resend_after = ?, expires_at = ?, updated_at = ? WHERE id = ? AND account_id = ? "
                "AND status = 'pending' AND resends = ? AND expires_at > ? "
                "AND resend_after IS NOT NULL AND resend_after <= ?",
                (
                    code_hash,
                    message_id,
                    resends + 1,
                    resend_after,
                    expires_at,
                    now,
                    otp_id,
                    account_id,
                    resends,
                    now,
                    now,
                ),
            )
            return _find(c, account_id, otp_id, None) if cur.rowcount == 1 else None

        return await self._write(op)

    async def delete_otp(self, account_id: str, otp_id: str) -> None:
        """Remove a verification (its message was refused)."""
        await self._write(
            lambda c: c.execute(
                "DELETE FROM otp_verifications WHERE id = ? AND account_id = ?",
                (otp_id, account_id),
            )
        )

    async def expire_otps(self, now: int, limit: int = 5000) -> int:
        """Expire pending verifications past their time (the partial index holds only those)."""

        def op(c: Conn) -> int:
            return c.execute(
                "UPDATE otp_verifications SET status = 'expired', updated_at = ? WHERE id IN "
                "(SELECT id FROM otp_verifications WHERE status = 'pending' AND expires_at <= ? "
                "LIMIT ?)",
                (now, now, limit),
            ).rowcount

        return await self._write(op)
