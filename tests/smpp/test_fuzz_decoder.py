"""Fuzzing the decoder and the framing: any bytes, in any chunking, yield only documented events."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dakghar.smpp import pdu as p
from dakghar.smpp.codec import decode, encode
from dakghar.smpp.connection import Connection, FatalError, InvalidPdu, PduReceived, Role
from dakghar.smpp.connection import SessionState as State
from dakghar.smpp.errors import DecodeError

from .test_codec_strategies import any_pdu


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _feed(role: Role, state: State, chunks: list[bytes]) -> list[object]:
    conn = Connection(role, max_pdu_size=4096)
    conn.state = state
    events: list[object] = []
    for chunk in chunks:
        new = conn.receive_data(chunk)
        fatal = any(isinstance(e, FatalError) for e in new)
        for event in new:
            assert isinstance(event, PduReceived | InvalidPdu | FatalError)
            if isinstance(event, InvalidPdu):
                assert isinstance(event.error, DecodeError)
                if event.response is not None and not fatal:
                    assert event.response.is_response
                    conn.send(event.response)  # what we answer must itself be encodable
            if isinstance(event, PduReceived):
                encode(event.pdu)  # everything we accept can be written back
        events += new
        if fatal:
            assert isinstance(new[-1], FatalError)
            assert conn.receive_data(b"\x00" * 32) == []
            break
    return events


_roles = st.sampled_from(list(Role))
_states = st.sampled_from([State.OPEN, State.BOUND_TRX, State.BOUND_RX, State.UNBOUND])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 10_000), max_size=8), _roles, _states)
def test_random_bytes_never_raise(data: bytes, cuts: list[int], role: Role, state: State) -> None:
    _feed(role, state, _chunks(data, cuts))


@st.composite
def mutated_stream(draw: st.DrawFn) -> bytes:
    stream = bytearray(b"".join(encode(pdu) for pdu in draw(st.lists(any_pdu, max_size=4))))
    for _ in range(draw(st.integers(0, 6))):
        if not stream:
            break
        where = draw(st.integers(0, len(stream) - 1))
        action = draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            stream[where] = draw(st.integers(0, 255))
        elif action == "drop":
            del stream[where]
        else:
            stream[where:where] = draw(st.binary(min_size=1, max_size=4))
    return bytes(stream)


@settings(max_examples=200, deadline=None)
@given(mutated_stream(), st.lists(st.integers(0, 10_000), max_size=8), _roles, _states)
def test_mutated_valid_streams_never_raise(
    data: bytes, cuts: list[int], role: Role, state: State
) -> None:
    _feed(role, state, _chunks(data, cuts))


@settings(max_examples=200, deadline=None)
@given(st.lists(any_pdu, min_size=1, max_size=5), st.lists(st.integers(0, 10_000), max_size=8))
def test_valid_streams_in_any_chunking_decode_to_the_same_pdus(
    pdus: list[p.Pdu], cuts: list[int]
) -> None:
    wire = b"".join(encode(x) for x in pdus)
    conn = Connection(Role.SMSC, max_pdu_size=1 << 20)
    conn.state = State.BOUND_TRX
    events = [e for chunk in _chunks(wire, cuts) for e in conn.receive_data(chunk)]
    assert len(events) == len(pdus)
    # Requests the bound SMSC would refuse come out as InvalidPdu; everything else is the same PDU.
    for event, sent in zip(events, pdus, strict=True):
        if isinstance(event, PduReceived):
            assert event.pdu == sent
        else:
            assert isinstance(event, InvalidPdu)
            assert event.error.sequence_number == sent.sequence_number


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=300))
def test_decode_only_ever_raises_decode_error(data: bytes) -> None:
    data = len(data).to_bytes(4, "big") + data[4:]
    try:
        pdu = decode(data)
    except DecodeError as error:
        assert error.status != 0
    else:
        assert isinstance(pdu, p.Pdu)
