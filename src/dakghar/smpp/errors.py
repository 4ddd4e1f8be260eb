"""Errors of the SMPP engine: one small hierarchy rooted in ``SmppError``.

``codec`` raises ``EncodeError``/``DecodeError``; ``connection`` raises ``ProtocolViolation`` when
our side tries to send something the session state forbids. They stay protocol-internal: the
connector layer maps them to ``dakghar.errors`` types where they reach the API.
"""

from __future__ import annotations

from dakghar.smpp.pdu import CommandStatus


class SmppError(Exception):
    """Base of every error raised by the SMPP codec and session."""


class EncodeError(SmppError, ValueError):
    """A PDU object cannot be put on the wire as it is (a field too long, a value out of range)."""


class DecodeError(SmppError):
    """Bytes that do not form a valid PDU; carries what to answer the peer with."""

    def __init__(
        self,
        message: str,
        *,
        status: int = CommandStatus.ESME_RSYSERR,
        command_id: int = 0,
        sequence_number: int = 0,
    ) -> None:
        super().__init__(message)
        try:
            self.status: int = CommandStatus(status)
        except ValueError:
            self.status = status
        self.command_id = command_id
        self.sequence_number = sequence_number

    def __repr__(self) -> str:
        return (
            f"DecodeError({self.args[0]!r}, status={self.status!r}, "
            f"command_id={self.command_id:#010x}, sequence_number={self.sequence_number})"
        )


class ProtocolViolation(SmppError):
    """Our side tried to send a PDU that the session state or our role forbids."""
