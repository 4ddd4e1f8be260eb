"""The sans-IO SMPP session: bytes in -> events out, PDUs in -> bytes out (in the manner of h11).

``Connection`` frames a byte stream into PDUs (partial and pipelined), decodes them with ``codec``,
numbers and tracks our requests, pairs responses with them, and enforces the session state machine
of SMPP 3.4 section 2.3 for both roles. It owns no socket and no clock: the asyncio client
connector, the simulated carrier and the server front feed it bytes and own every timer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from dakghar.smpp import pdu as p
from dakghar.smpp.codec import HEADER, decode_body, encode
from dakghar.smpp.errors import DecodeError, ProtocolViolation
from dakghar.smpp.pdu import CommandId as C
from dakghar.smpp.pdu import CommandStatus as S

DEFAULT_MAX_PDU_SIZE = 64 * 1024
MAX_SEQUENCE = 0x7FFFFFFF


class Role(Enum):
    ESME = "esme"  # the client: binds, submits, receives deliveries
    SMSC = "smsc"  # the server: accepts binds, delivers


class SessionState(Enum):
    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"


@dataclass(slots=True)
class PduReceived:
    """A well-formed PDU; for a response, ``request`` is our request it answers (or None)."""

    pdu: p.Pdu
    request: p.Pdu | None = None


@dataclass(slots=True)
class InvalidPdu:
    """A PDU that was framed correctly but cannot be accepted.

    ``response`` is what to send back (None when the bad PDU was itself a response). For a bad
    response that matched one of our requests, ``request`` is that request, now no longer
    outstanding.
    """

    error: DecodeError
    response: p.Pdu | None
    request: p.Pdu | None = None


@dataclass(slots=True)
class FatalError:
    """The stream cannot be resynchronised; the connection is closed and must be dropped."""

    reason: str


Event = PduReceived | InvalidPdu | FatalError

_BOUND = {
    C.bind_transmitter_resp: SessionState.BOUND_TX,
    C.bind_receiver_resp: SessionState.BOUND_RX,
    C.bind_transceiver_resp: SessionState.BOUND_TRX,
}
_TX, _RX, _TRX = SessionState.BOUND_TX, SessionState.BOUND_RX, SessionState.BOUND_TRX
_ANY_BOUND = frozenset((_TX, _RX, _TRX))
_LINK = frozenset((SessionState.OPEN, _TX, _RX, _TRX))
# Requests each side may send, and the states that allow them (SMPP 3.4 table 2-1). enquire_link
# is also allowed while OPEN, as SMPP 5.0 and most SMSCs do, so a link can be probed before bind.
_ESME_REQUESTS: dict[int, frozenset[SessionState]] = {
    C.bind_transmitter: frozenset((SessionState.OPEN,)),
    C.bind_receiver: frozenset((SessionState.OPEN,)),
    C.bind_transceiver: frozenset((SessionState.OPEN,)),
    C.unbind: _ANY_BOUND,
    C.enquire_link: _LINK,
    C.submit_sm: frozenset((_TX, _TRX)),
    C.submit_multi: frozenset((_TX, _TRX)),
    C.data_sm: frozenset((_TX, _TRX)),
    C.query_sm: frozenset((_TX, _TRX)),
    C.cancel_sm: frozenset((_TX, _TRX)),
    C.replace_sm: frozenset((_TX, _TRX)),
}
_SMSC_REQUESTS: dict[int, frozenset[SessionState]] = {
    C.outbind: frozenset((SessionState.OPEN,)),
    C.unbind: _ANY_BOUND,
    C.enquire_link: _LINK,
    C.deliver_sm: frozenset((_RX, _TRX)),
    C.data_sm: frozenset((_RX, _TRX)),
    C.alert_notification: frozenset((_RX, _TRX)),
}
_BIND_IDS = frozenset((C.bind_transmitter, C.bind_receiver, C.bind_transceiver))


class Connection:
    """One SMPP session seen from ``role``'s side; feed it bytes, ask it for bytes."""

    def __init__(self, role: Role, *, max_pdu_size: int = DEFAULT_MAX_PDU_SIZE) -> None:
        self.role = role
        self.state = SessionState.OPEN
        self.max_pdu_size = max_pdu_size
        self.outstanding: dict[int, p.Pdu] = {}
        self._buffer = bytearray()
        self._next_sequence = 1
        self._may_send = _ESME_REQUESTS if role is Role.ESME else _SMSC_REQUESTS
        self._may_receive = _SMSC_REQUESTS if role is Role.ESME else _ESME_REQUESTS

    # --- outbound -----------------------------------------------------------------------------

    def send(self, pdu: p.Pdu) -> bytes:
        """Bytes for ``pdu``; numbers and tracks requests; ``ProtocolViolation`` if not allowed."""
        if self.state is SessionState.CLOSED:
            raise ProtocolViolation("connection is closed")
        command_id = pdu.command_id
        if command_id & p.RESPONSE_BIT:
            data = encode(pdu)
            if self.role is Role.SMSC and pdu.command_status == 0 and command_id in _BOUND:
                self.state = _BOUND[command_id]
            elif command_id == C.unbind_resp:
                self.state = SessionState.UNBOUND
            return data
        allowed = self._may_send.get(command_id)
        if allowed is None:
            raise ProtocolViolation(f"{self.role.name} never sends {C(command_id).name}")
        if self.state not in allowed:
            raise ProtocolViolation(f"{C(command_id).name} not allowed in {self.state.name}")
        if command_id in _BIND_IDS and any(
            r.command_id in _BIND_IDS for r in self.outstanding.values()
        ):
            raise ProtocolViolation("a bind is already waiting for its response")
        if pdu.sequence_number == 0:
            pdu.sequence_number = self._allocate_sequence()
        data = encode(pdu)
        if pdu.response_class is not None:
            self.outstanding[pdu.sequence_number] = pdu
        if command_id == C.unbind:
            self.state = SessionState.UNBOUND
        return data

    def _allocate_sequence(self) -> int:
        sequence = self._next_sequence
        # Skip numbers still in flight after a wrap, so a late response cannot match the wrong PDU.
        while sequence in self.outstanding:
            sequence = sequence % MAX_SEQUENCE + 1
        self._next_sequence = sequence % MAX_SEQUENCE + 1
        return sequence

    def forget(self, sequence_number: int) -> p.Pdu | None:
        """Stop waiting for a response (the caller's timer expired); returns the request."""
        return self.outstanding.pop(sequence_number, None)

    def close(self) -> None:
        """Mark the session closed (the transport went away); later data is ignored."""
        self.state = SessionState.CLOSED

    # --- inbound ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Events for the complete PDUs now buffered; a partial PDU waits for more bytes."""
        if self.state is SessionState.CLOSED:
            return []
        buffer = self._buffer
        buffer += data
        events: list[Event] = []
        pos = 0
        available = len(buffer)
        while available - pos >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(buffer, pos)
            if length < 16 or length > self.max_pdu_size:
                self.state = SessionState.CLOSED
                buffer.clear()
                events.append(FatalError(f"command_length {length} out of range 16..max"))
                return events
            if available - pos < length:
                break
            chunk = bytes(buffer[pos : pos + length])
            pos += length
            events.append(self._receive_pdu(command_id, status, sequence, chunk))
        if pos:
            del buffer[:pos]
        return events

    def _receive_pdu(self, command_id: int, status: int, sequence: int, chunk: bytes) -> Event:
        is_response = bool(command_id & p.RESPONSE_BIT)
        try:
            pdu = decode_body(command_id, status, sequence, chunk, 16)
        except DecodeError as error:
            if is_response:
                request = self.outstanding.pop(sequence, None) if sequence else None
                return InvalidPdu(error, None, request)
            if error.status == S.ESME_RINVCMDID:
                return InvalidPdu(error, p.GenericNack(sequence_number=sequence, command_status=3))
            cls = p.PDU_CLASSES[command_id].response_class or p.GenericNack
            return InvalidPdu(error, cls(sequence_number=sequence, command_status=error.status))
        if is_response:
            return PduReceived(pdu, self._match(pdu))
        refusal = self._refusal(command_id)
        if refusal is not None:
            refused = DecodeError(
                f"{C(command_id).name} refused in {self.state.name}",
                status=refusal,
                command_id=command_id,
                sequence_number=sequence,
            )
            response = pdu.response(refusal) if pdu.response_class is not None else None
            return InvalidPdu(refused, response)
        if command_id == C.unbind:
            self.state = SessionState.UNBOUND
        return PduReceived(pdu)

    def _match(self, response: p.Pdu) -> p.Pdu | None:
        sequence = response.sequence_number
        request = self.outstanding.get(sequence)
        if request is None:
            return None
        if response.command_id != C.generic_nack and request.response_class is not type(response):
            return None
        del self.outstanding[sequence]
        command_id = response.command_id
        if self.role is Role.ESME and response.command_status == 0 and command_id in _BOUND:
            self.state = _BOUND[command_id]
        elif command_id == C.unbind_resp:
            self.state = SessionState.UNBOUND
        return request

    def _refusal(self, command_id: int) -> int | None:
        """The status to refuse an inbound request with, or None to accept it."""
        allowed = self._may_receive.get(command_id)
        if allowed is None:
            return S.ESME_RINVCMDID  # a request only the other role sends
        if self.state in allowed:
            return None
        if command_id in _BIND_IDS and self.state in _ANY_BOUND:
            return S.ESME_RALYBND
        return S.ESME_RINVBNDSTS

    @property
    def bound(self) -> bool:
        """True while a bind is in force."""
        return self.state in _ANY_BOUND

    @property
    def can_submit(self) -> bool:
        """True when this side may send submit_sm (ESME) or deliver_sm (SMSC) now."""
        wanted = C.submit_sm if self.role is Role.ESME else C.deliver_sm
        return self.state in self._may_send[wanted]
