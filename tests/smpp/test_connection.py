"""The sans-IO session: framing, sequence numbers, response matching and the bind state machine."""

from __future__ import annotations

import pytest

from dakghar.smpp import pdu as p
from dakghar.smpp.codec import encode
from dakghar.smpp.connection import (
    Connection,
    FatalError,
    InvalidPdu,
    PduReceived,
    Role,
    SessionState,
)
from dakghar.smpp.errors import ProtocolViolation
from dakghar.smpp.pdu import CommandStatus as S


def bound_pair(
    bind: type[p.BindTransmitter | p.BindReceiver | p.BindTransceiver] = p.BindTransceiver,
) -> tuple[Connection, Connection]:
    """An ESME and an SMSC connection that have completed a bind over 'the wire'."""
    esme, smsc = Connection(Role.ESME), Connection(Role.SMSC)
    [event] = smsc.receive_data(esme.send(bind(system_id="acct", password="pw")))
    assert isinstance(event, PduReceived)
    [answer] = esme.receive_data(smsc.send(event.pdu.response(system_id="SMSC")))
    assert isinstance(answer, PduReceived)
    assert answer.request is not None
    return esme, smsc


def submit(n: int = 0) -> p.SubmitSm:
    return p.SubmitSm(source_addr="DAKGHR", destination_addr=f"9198{n:08d}", short_message=b"hi")


def test_bind_transceiver_moves_both_sides_to_bound_trx() -> None:
    esme, smsc = bound_pair()
    assert esme.state is smsc.state is SessionState.BOUND_TRX
    assert esme.outstanding == {}


def test_failed_bind_leaves_the_esme_open() -> None:
    esme, smsc = Connection(Role.ESME), Connection(Role.SMSC)
    [event] = smsc.receive_data(esme.send(p.BindTransmitter(system_id="x", password="bad")))
    assert isinstance(event, PduReceived)
    esme.receive_data(smsc.send(event.pdu.response(S.ESME_RINVPASWD)))
    assert esme.state is smsc.state is SessionState.OPEN


def test_pipelined_pdus_in_one_chunk_all_come_out_in_order() -> None:
    esme, smsc = bound_pair()
    wire = b"".join(esme.send(submit(i)) for i in range(50))
    events = smsc.receive_data(wire)
    assert [e.pdu.destination_addr for e in events] == [  # type: ignore[union-attr]
        f"9198{i:08d}" for i in range(50)
    ]
    assert len(esme.outstanding) == 50


def test_a_pdu_split_at_every_byte_boundary_is_reassembled() -> None:
    esme, _ = bound_pair()
    first, second = esme.send(submit(1)), esme.send(p.EnquireLink())
    wire = first + second
    for cut in range(len(wire) + 1):
        receiver = Connection(Role.SMSC)
        receiver.state = SessionState.BOUND_TRX
        events = receiver.receive_data(wire[:cut]) + receiver.receive_data(wire[cut:])
        assert [type(e.pdu) for e in events] == [p.SubmitSm, p.EnquireLink]  # type: ignore[union-attr]


def test_one_byte_at_a_time_still_frames() -> None:
    esme, smsc = bound_pair()
    wire = b"".join(esme.send(submit(i)) for i in range(3))
    events = [e for byte in wire for e in smsc.receive_data(bytes([byte]))]
    assert len(events) == 3


def test_responses_match_and_release_their_requests() -> None:
    esme, smsc = bound_pair()
    requests = [submit(i) for i in range(3)]
    received = smsc.receive_data(b"".join(esme.send(r) for r in requests))
    assert [r.sequence_number for r in requests] == [2, 3, 4]  # 1 went to the bind
    # Answer out of order: the SMSC need not keep order.
    answers = b"".join(
        smsc.send(e.pdu.response(message_id=f"m{e.pdu.sequence_number}"))  # type: ignore[union-attr]
        for e in reversed(received)
    )
    events = esme.receive_data(answers)
    assert [e.request for e in events] == list(reversed(requests))  # type: ignore[union-attr]
    assert esme.outstanding == {}


def test_a_response_to_nothing_we_sent_has_no_request() -> None:
    esme, _ = bound_pair()
    [event] = esme.receive_data(encode(p.SubmitSmResp(message_id="x", sequence_number=999)))
    assert isinstance(event, PduReceived)
    assert event.request is None


def test_throttled_submit_sm_resp_is_reported_with_its_status() -> None:
    esme, smsc = bound_pair()
    request = submit()
    [event] = smsc.receive_data(esme.send(request))
    [answer] = esme.receive_data(smsc.send(event.pdu.response(S.ESME_RTHROTTLED)))  # type: ignore[union-attr]
    assert isinstance(answer, PduReceived)
    assert answer.pdu.command_status == S.ESME_RTHROTTLED
    assert answer.request is request


def test_generic_nack_releases_the_request_it_answers() -> None:
    esme, _ = bound_pair()
    request = submit()
    esme.send(request)
    nack = p.GenericNack(sequence_number=request.sequence_number, command_status=S.ESME_RSYSERR)
    [event] = esme.receive_data(encode(nack))
    assert isinstance(event, PduReceived)
    assert event.request is request


def test_unknown_command_id_gets_generic_nack_and_the_next_pdu_still_parses() -> None:
    esme, smsc = bound_pair()
    junk = bytes.fromhex("00000014 00000777 00000000 0000002a") + b"abcd"
    events = smsc.receive_data(junk + esme.send(p.EnquireLink()))
    assert isinstance(events[0], InvalidPdu)
    assert events[0].response == p.GenericNack(sequence_number=42, command_status=S.ESME_RINVCMDID)
    assert isinstance(events[1], PduReceived)
    assert isinstance(events[1].pdu, p.EnquireLink)


def test_bad_submit_sm_body_is_answered_with_submit_sm_resp_and_an_error_status() -> None:
    esme, smsc = bound_pair()
    wire = bytearray(esme.send(p.SubmitSm(short_message=b"abc")))
    wire[-4] = 200  # sm_length now runs past the PDU
    events = smsc.receive_data(bytes(wire) + esme.send(p.EnquireLink()))
    assert isinstance(events[0], InvalidPdu)
    assert events[0].response == p.SubmitSmResp(sequence_number=2, command_status=S.ESME_RINVMSGLEN)
    assert isinstance(events[1], PduReceived)


def test_a_garbled_response_is_not_answered_but_releases_its_request() -> None:
    esme, _ = bound_pair()
    request = submit()
    esme.send(request)
    bad = (
        bytes.fromhex("00000017 80000004 00000000")
        + request.sequence_number.to_bytes(4, "big")
        + b"\x00\x04\x24\x00\x09ab"  # message_id, then a TLV claiming 9 octets
    )
    [event] = esme.receive_data(bad)
    assert isinstance(event, InvalidPdu)
    assert event.response is None
    assert event.request is request


@pytest.mark.parametrize("length", [0, 15, 64 * 1024 + 1, 0xFFFFFFFF])
def test_impossible_command_length_is_fatal_and_closes(length: int) -> None:
    _, smsc = bound_pair()
    header = length.to_bytes(4, "big") + bytes.fromhex("00000015 00000000 00000001")
    events = smsc.receive_data(header + encode(p.EnquireLink(sequence_number=2)))
    assert len(events) == 1
    assert isinstance(events[0], FatalError)
    assert smsc.state is SessionState.CLOSED
    assert smsc.receive_data(encode(p.EnquireLink(sequence_number=3))) == []
    with pytest.raises(ProtocolViolation):
        smsc.send(p.EnquireLink())


def test_max_pdu_size_is_configurable() -> None:
    smsc = Connection(Role.SMSC, max_pdu_size=100)
    wire = encode(p.BindTransmitter(system_id="a", sequence_number=1, tlvs={0x1500: b"x" * 200}))
    [event] = smsc.receive_data(wire)
    assert isinstance(event, FatalError)


def test_smsc_answers_submit_sm_before_bind_with_invbndsts() -> None:
    smsc = Connection(Role.SMSC)
    [event] = smsc.receive_data(encode(p.SubmitSm(sequence_number=5)))
    assert isinstance(event, InvalidPdu)
    assert event.response == p.SubmitSmResp(sequence_number=5, command_status=S.ESME_RINVBNDSTS)


def test_smsc_refuses_a_second_bind_with_alybnd() -> None:
    _, smsc = bound_pair()
    [event] = smsc.receive_data(encode(p.BindTransmitter(sequence_number=9)))
    assert isinstance(event, InvalidPdu)
    assert event.response == p.BindTransmitterResp(sequence_number=9, command_status=S.ESME_RALYBND)


def test_smsc_refuses_submit_sm_on_a_receiver_bind() -> None:
    _, smsc = bound_pair(p.BindReceiver)
    [event] = smsc.receive_data(encode(p.SubmitSm(sequence_number=9)))
    assert isinstance(event, InvalidPdu)
    assert event.response is not None
    assert event.response.command_status == S.ESME_RINVBNDSTS


def test_esme_may_not_submit_on_a_receiver_bind_or_before_binding() -> None:
    esme, _ = bound_pair(p.BindReceiver)
    with pytest.raises(ProtocolViolation):
        esme.send(submit())
    with pytest.raises(ProtocolViolation):
        Connection(Role.ESME).send(submit())


def test_smsc_may_not_deliver_on_a_transmitter_bind() -> None:
    esme, smsc = bound_pair(p.BindTransmitter)
    assert esme.state is SessionState.BOUND_TX
    with pytest.raises(ProtocolViolation):
        smsc.send(p.DeliverSm(short_message=b"x"))
    assert not smsc.can_submit and esme.can_submit


def test_esme_refuses_submit_sm_from_the_smsc_side() -> None:
    esme, _ = bound_pair()
    [event] = esme.receive_data(encode(p.SubmitSm(sequence_number=3)))
    assert isinstance(event, InvalidPdu)
    assert event.response is not None
    assert event.response.command_status == S.ESME_RINVCMDID


def test_deliver_sm_reaches_a_receiver_and_is_acknowledged() -> None:
    esme, smsc = bound_pair(p.BindReceiver)
    [event] = esme.receive_data(smsc.send(p.DeliverSm(esm_class=4, short_message=b"id:1")))
    assert isinstance(event, PduReceived)
    [ack] = smsc.receive_data(esme.send(event.pdu.response()))
    assert isinstance(ack, PduReceived)
    assert isinstance(ack.request, p.DeliverSm)


def test_unbind_moves_both_sides_to_unbound_and_stops_submits() -> None:
    esme, smsc = bound_pair()
    [event] = smsc.receive_data(esme.send(p.Unbind()))
    assert esme.state is smsc.state is SessionState.UNBOUND
    esme.receive_data(smsc.send(event.pdu.response()))  # type: ignore[union-attr]
    assert esme.outstanding == {}
    with pytest.raises(ProtocolViolation):
        esme.send(submit())


def test_enquire_link_works_before_bind() -> None:
    esme, smsc = Connection(Role.ESME), Connection(Role.SMSC)
    [event] = smsc.receive_data(esme.send(p.EnquireLink()))
    assert isinstance(event, PduReceived)


def test_sequence_numbers_wrap_to_one_and_skip_numbers_in_flight() -> None:
    esme, _ = bound_pair()
    esme._next_sequence = 0x7FFFFFFF
    a, b = submit(), submit()
    esme.send(a)
    esme.send(b)
    assert (a.sequence_number, b.sequence_number) == (0x7FFFFFFF, 1)
    # Wrap again while 2 is still outstanding: it must be skipped.
    esme.outstanding[2] = submit()
    esme._next_sequence = 2
    c = submit()
    esme.send(c)
    assert c.sequence_number == 3


def test_a_caller_chosen_sequence_number_is_kept() -> None:
    esme, _ = bound_pair()
    request = p.SubmitSm(sequence_number=4242)
    esme.send(request)
    assert 4242 in esme.outstanding


def test_a_second_bind_cannot_be_sent_while_the_first_is_pending() -> None:
    esme = Connection(Role.ESME)
    esme.send(p.BindTransceiver(system_id="a"))
    with pytest.raises(ProtocolViolation):
        esme.send(p.BindTransmitter(system_id="a"))


def test_forgetting_a_timed_out_request_makes_its_late_response_unmatched() -> None:
    esme, smsc = bound_pair()
    request = submit()
    [event] = smsc.receive_data(esme.send(request))
    assert esme.forget(request.sequence_number) is request
    [late] = esme.receive_data(smsc.send(event.pdu.response(message_id="m")))  # type: ignore[union-attr]
    assert isinstance(late, PduReceived)
    assert late.request is None
