"""The codec against itself (round trips of every PDU type), the spec's bytes, smpplib, smpp34."""

from __future__ import annotations

import pytest
import smpp34
import smpplib.smpp
from hypothesis import given, settings
from hypothesis import strategies as st

from dakghar.smpp import pdu as p
from dakghar.smpp.codec import LAYOUTS, decode, encode
from dakghar.smpp.errors import DecodeError, EncodeError
from dakghar.smpp.pdu import CommandStatus as S
from dakghar.smpp.tlv import Tag, dlt_tlvs

from .test_codec_strategies import any_pdu, pdu_of

ALL_CLASSES = sorted(LAYOUTS, key=lambda c: c.__name__)


@settings(max_examples=200, deadline=None)
@given(any_pdu)
def test_every_pdu_type_survives_encode_then_decode(pdu: p.Pdu) -> None:
    wire = encode(pdu)
    back = decode(wire)
    assert back == pdu
    assert encode(back) == wire


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_each_pdu_type_reencodes_byte_identically(cls: type[p.Pdu], data: st.DataObject) -> None:
    wire = encode(data.draw(pdu_of(cls)))
    assert encode(decode(wire)) == wire


def test_enquire_link_matches_the_spec_bytes() -> None:
    wire = encode(p.EnquireLink(sequence_number=1))
    assert wire == bytes.fromhex("00000010 00000015 00000000 00000001")


def test_submit_sm_matches_hand_assembled_spec_bytes() -> None:
    pdu = p.SubmitSm(
        source_addr_ton=5,
        source_addr="DAKGHR",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="919812345678",
        registered_delivery=1,
        short_message=b"hi",
        sequence_number=2,
        tlvs={Tag.user_message_reference: 0x0102},
    )
    body = (
        b"\x00"  # service_type
        + b"\x05\x00DAKGHR\x00"
        + b"\x01\x01919812345678\x00"
        + b"\x00\x00\x00"  # esm_class, protocol_id, priority_flag
        + b"\x00\x00"  # schedule_delivery_time, validity_period
        + b"\x01\x00\x00\x00"  # registered_delivery .. sm_default_msg_id
        + b"\x02hi"
        + b"\x02\x04\x00\x02\x01\x02"
    )
    header = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000004 00000000 00000002")
    assert encode(pdu) == header + body
    assert decode(header + body) == pdu


def test_bind_transceiver_resp_carries_sc_interface_version() -> None:
    wire = (
        bytes.fromhex("0000001a 80000009 00000000 00000003") + b"SMSC\x00" + b"\x02\x10\x00\x01\x34"
    )
    resp = decode(wire)
    assert isinstance(resp, p.BindTransceiverResp)
    assert resp.system_id == "SMSC"
    assert resp.tlvs == {Tag.sc_interface_version: 0x34}


def test_unknown_and_dlt_tlvs_keep_their_order_and_bytes() -> None:
    tlvs = {0x3FFF: b"\x00\x01vendor", **dlt_tlvs("1201159100000000000", "1207161234567890123")}
    tlvs[Tag.message_payload] = b"x" * 300
    wire = encode(p.SubmitSm(destination_addr="9198", tlvs=tlvs))
    back = decode(wire)
    assert list(back.tlvs) == [0x3FFF, 0x1400, 0x1401, 0x0424]
    assert back.tlvs[0x1400] == b"1201159100000000000"
    assert encode(back) == wire


# --- strict encoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pdu",
    [
        p.SubmitSm(short_message=b"x" * 255),
        p.SubmitSm(source_addr="1" * 21),
        p.SubmitSm(destination_addr="bad\x00addr"),
        p.SubmitSm(esm_class=256),
        p.SubmitSm(destination_addr="₹"),
        p.BindTransmitter(system_id="a" * 16),
        p.BindTransmitter(password="123456789"),
        p.SubmitSmResp(message_id="m" * 65),
        p.SubmitSm(tlvs={Tag.sar_total_segments: 256}),
        p.SubmitSm(tlvs={Tag.message_payload: 5}),
        p.SubmitSm(tlvs={Tag.message_payload: b"x" * 70000}),
        p.SubmitMulti(dest_addresses=[p.SmeAddress(destination_addr="1")] * 255),
        p.EnquireLink(sequence_number=-1),
    ],
    ids=repr,
)
def test_encode_refuses_values_the_spec_forbids(pdu: p.Pdu) -> None:
    with pytest.raises(EncodeError):
        encode(pdu)


# --- tolerant but precise decoding ----------------------------------------------------------


def _pdu(command_id: int, body: bytes, status: int = 0, seq: int = 9) -> bytes:
    return (
        (16 + len(body)).to_bytes(4, "big")
        + bytes.fromhex(f"{command_id:08x}{status:08x}{seq:08x}")
        + body
    )


def test_submit_sm_resp_without_the_final_nul_is_accepted() -> None:
    resp = decode(_pdu(0x80000004, b"abc123"))
    assert resp == p.SubmitSmResp(message_id="abc123", sequence_number=9)


def test_error_response_with_an_empty_body_decodes_to_defaults() -> None:
    resp = decode(_pdu(0x80000004, b"", status=S.ESME_RTHROTTLED))
    assert resp == p.SubmitSmResp(sequence_number=9, command_status=0x58)


def _submit_body(**fields: object) -> bytes:
    return encode(p.SubmitSm(**fields))[16:]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (_pdu(0x00000999, b""), S.ESME_RINVCMDID),
        (_pdu(0x00000004, _submit_body()[:-3]), S.ESME_RINVCMDLEN),
        (_pdu(0x00000004, _submit_body(short_message=b"abc")[:-1]), S.ESME_RINVMSGLEN),
        (_pdu(0x00000004, b"\x00\x00\x00" + b"1" * 30 + b"\x00" + b"\x00" * 20), S.ESME_RINVSRCADR),
        (_pdu(0x00000004, b"CMTXYZ\x00" + b"\x00" * 30), S.ESME_RINVSERTYP),
        (_pdu(0x00000004, _submit_body() + b"\x04\x24\x00"), S.ESME_RINVOPTPARSTREAM),
        (_pdu(0x00000004, _submit_body() + b"\x04\x24\x00\x09ab"), S.ESME_RINVOPTPARSTREAM),
        (_pdu(0x00000004, _submit_body() + b"\x02\x0e\x00\x02\x00\x01"), S.ESME_RINVPARLEN),
        (_pdu(0x00000021, b"\x00\x00\x00\x00\x01\x07"), S.ESME_RINVDESTFLAG),
        (_pdu(0x00000002, b"x" * 20 + b"\x00"), S.ESME_RINVSYSID),
    ],
)
def test_bad_bodies_name_the_status_to_answer(wire: bytes, status: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode(wire)
    assert info.value.status == status
    assert info.value.sequence_number == 9


def test_command_length_that_disagrees_with_the_data_is_rejected() -> None:
    wire = encode(p.EnquireLink(sequence_number=3))
    with pytest.raises(DecodeError) as info:
        decode(wire + b"\x00")
    assert info.value.status == S.ESME_RINVCMDLEN
    with pytest.raises(DecodeError):
        decode(wire[:10])


# --- a real peer we did not write: smpplib and smpp34 ---------------------------------------


def _smpplib(command: str, **fields: object) -> bytes:
    pdu = smpplib.smpp.make_pdu(command, client=None, sequence=0, **fields)
    pdu.sequence = 77  # smpplib takes sequence numbers from its client, not from kwargs
    wire: bytes = pdu.generate()
    return wire


def _parse_smpplib(wire: bytes) -> object:
    return smpplib.smpp.parse_pdu(wire, client=None, sequence=0, allow_unknown_opt_params=True)


def test_smpplib_submit_sm_decodes_field_for_field() -> None:
    wire = _smpplib(
        "submit_sm",
        source_addr_ton=5,
        source_addr="DAKGHR",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="919812345678",
        esm_class=0x40,
        data_coding=8,
        registered_delivery=1,
        short_message=b"\x05\x00\x03\x2a\x02\x01\x09\x39",
        sar_msg_ref_num=42,
    )
    ours = decode(wire)
    assert isinstance(ours, p.SubmitSm)
    assert ours.sequence_number == 77
    assert (ours.source_addr, ours.destination_addr) == ("DAKGHR", "919812345678")
    assert (ours.esm_class, ours.data_coding, ours.registered_delivery) == (0x40, 8, 1)
    assert ours.short_message == b"\x05\x00\x03\x2a\x02\x01\x09\x39"
    assert ours.tlvs == {Tag.sar_msg_ref_num: 42}
    assert encode(ours) == wire


def test_smpplib_deliver_sm_receipt_decodes() -> None:
    text = b"id:abc123 sub:001 dlvrd:001 submit date:2611250110 done date:2611250111 stat:DELIVRD"
    wire = _smpplib(
        "deliver_sm",
        source_addr="919812345678",
        destination_addr="DAKGHR",
        esm_class=0x04,
        short_message=text,
        receipted_message_id="abc123",
        message_state=2,
    )
    ours = decode(wire)
    assert isinstance(ours, p.DeliverSm)
    assert ours.short_message == text
    assert ours.tlvs == {Tag.receipted_message_id: "abc123", Tag.message_state: 2}
    assert encode(ours) == wire


def test_smpplib_bind_and_enquire_link_decode() -> None:
    bind = decode(
        _smpplib("bind_transceiver", system_id="acct", password="secret", system_type="x")
    )
    assert bind == p.BindTransceiver(
        system_id="acct", password="secret", system_type="x", sequence_number=77
    )
    assert decode(_smpplib("enquire_link")) == p.EnquireLink(sequence_number=77)


@pytest.mark.parametrize(
    "pdu",
    [
        p.SubmitSm(
            source_addr="DAKGHR",
            destination_addr="919812345678",
            data_coding=8,
            short_message="नमस्ते".encode("utf-16-be"),
            sequence_number=5,
            tlvs={Tag.user_message_reference: 7},
        ),
        p.DeliverSm(source_addr="9198", destination_addr="DAKGHR", esm_class=4, short_message=b"x"),
        p.BindTransmitter(system_id="acct", password="pw", sequence_number=1),
        p.EnquireLink(sequence_number=12),
        p.SubmitSmResp(message_id="0a1b2c", sequence_number=5),
    ],
    ids=lambda x: type(x).__name__,
)
def test_smpplib_reads_what_we_write(pdu: p.Pdu) -> None:
    theirs = _parse_smpplib(encode(pdu))
    assert theirs.command == pdu.command_id.name  # type: ignore[attr-defined]
    assert theirs.sequence == pdu.sequence_number  # type: ignore[attr-defined]
    for name in ("source_addr", "destination_addr", "short_message", "system_id", "message_id"):
        if hasattr(pdu, name):
            expected = getattr(pdu, name)
            got = getattr(theirs, name)
            got = got.decode() if isinstance(got, bytes) and isinstance(expected, str) else got
            assert got == expected, name


def test_smpp34_and_our_codec_agree_on_submit_sm_bytes() -> None:
    theirs = smpp34.SubmitSm(
        "DAKGHR",
        "919812345678",
        b"hello",
        source_addr_ton=5,
        dest_addr_ton=1,
        dest_addr_npi=1,
        registered_delivery=1,
        tlvs=[smpp34.Tlv(0x1401, b"1207161234567890123")],
        sequence_number=31,
    )
    ours = p.SubmitSm(
        source_addr_ton=5,
        source_addr="DAKGHR",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="919812345678",
        registered_delivery=1,
        short_message=b"hello",
        sequence_number=31,
        tlvs={0x1401: b"1207161234567890123"},
    )
    assert encode(ours) == theirs.encode()
    back = smpp34.decode(encode(ours))
    assert isinstance(back, smpp34.SubmitSm)
    assert (back.sequence_number, back.destination_addr, back.short_message) == (
        31,
        "919812345678",
        b"hello",
    )
    assert decode(theirs.encode()) == ours


def test_smpp34_decodes_our_enquire_link_header() -> None:
    raw = smpp34.decode(encode(p.EnquireLink(sequence_number=255)))
    assert isinstance(raw, smpp34.RawPdu)
    assert (raw.command_id, raw.sequence_number, raw.body) == (0x15, 255, b"")


def test_sm_length_255_is_refused_as_invalid_message_length() -> None:
    body = _submit_body()[:-1] + b"\xff" + b"x" * 255
    with pytest.raises(DecodeError) as info:
        decode(_pdu(0x00000004, body))
    assert info.value.status == S.ESME_RINVMSGLEN


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_submit_sm_fast_path_agrees_with_the_table_driven_decoder(data: st.DataObject) -> None:
    from dakghar.smpp import codec
    from dakghar.smpp.codec_sm import decode_short_message

    wire = bytearray(encode(data.draw(pdu_of(p.SubmitSm))))
    for _ in range(data.draw(st.integers(0, 3))):
        wire[data.draw(st.integers(16, len(wire) - 1))] = data.draw(st.sampled_from([0, 1, 65]))
    fast = decode_short_message(p.SubmitSm, 0, 1, bytes(wire), 16)
    layout = codec._BY_ID[4]
    try:
        values, pos = codec._decode_fields(layout.ops, bytes(wire), 16, len(wire))
        generic: p.Pdu | None = p.SubmitSm(
            *values, sequence_number=1, tlvs=codec.decode_tlvs(bytes(wire), pos, len(wire))
        )
    except DecodeError:
        generic = None
    assert fast == generic
