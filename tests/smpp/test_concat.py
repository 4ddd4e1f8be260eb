"""Long messages: split and reassemble round trips (GSM, UCS-2, 8/16-bit refs, SAR), and text."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dakghar.core.text import GSM7_BASIC, GSM7_EXTENSION
from dakghar.smpp import pdu as p
from dakghar.smpp.codec import decode, encode
from dakghar.smpp.coding import DataCoding, decode_text, encode_text
from dakghar.smpp.concat import (
    UDHI,
    ConcatInfo,
    Method,
    Reassembler,
    concat_info,
    parse_udh,
    split,
    split_pdu,
)
from dakghar.smpp.tlv import Tag

HINDI = "नमस्ते, आपका ओटीपी 482913 है। कृपया इसे किसी के साथ साझा न करें। धन्यवाद! " * 3
EMOJI = "Party time 🎉🎂🥳 see you 👍🏽 there! " * 6
GSM_WITH_ESCAPES = "Price: €5 {promo} [code] ~ok~ | ^_^ \\o/ " * 10

CODINGS = {"gsm": DataCoding.SMSC_DEFAULT, "ucs2": DataCoding.UCS2}


def template(data_coding: int) -> p.DeliverSm:
    return p.DeliverSm(
        source_addr="919812345678", destination_addr="56767", data_coding=data_coding
    )


def reassemble(pdus: list[p.DeliverSm], now: float = 0.0) -> bytes | None:
    reassembler = Reassembler()
    results = [reassembler.feed(decode(encode(x)), now) for x in pdus]  # type: ignore[arg-type]
    assert all(r is None for r in results[:-1])
    assert len(reassembler) == 0
    return results[-1]


@pytest.mark.parametrize("method", [Method.UDH8, Method.UDH16, Method.SAR])
@pytest.mark.parametrize(
    ("text", "coding"),
    [
        (GSM_WITH_ESCAPES, DataCoding.SMSC_DEFAULT),
        (HINDI, DataCoding.UCS2),
        (EMOJI, DataCoding.UCS2),
        ("plain latin text é " * 20, DataCoding.LATIN1),
    ],
    ids=["gsm-escapes", "hindi", "emoji", "latin1"],
)
def test_split_then_reassemble_gives_the_text_back(text: str, coding: int, method: Method) -> None:
    payload = encode_text(text, coding)
    parts = split_pdu(template(coding), payload, method, ref=0xBEEF)
    assert len(parts) > 1
    for part in parts:
        encode(part)  # every part fits the wire (short_message <= 254)
        info, _ = concat_info(part)
        assert info is not None and info.total == len(parts)
        if method is Method.SAR:
            assert part.esm_class & UDHI == 0 and part.tlvs[Tag.sar_msg_ref_num] == 0xBEEF
        else:
            assert part.esm_class & UDHI
    whole = reassemble(parts)
    assert whole == payload
    assert decode_text(whole, coding) == text


def test_part_capacities_follow_the_standard_counts() -> None:
    gsm = split(b"a" * 400, DataCoding.SMSC_DEFAULT, Method.UDH8)
    assert [len(x.short_message) - 6 for x in gsm] == [153, 153, 94]
    ucs2 = split(b"\x00a" * 200, DataCoding.UCS2, Method.UDH16)
    assert [len(x.short_message) - 7 for x in ucs2] == [132, 132, 132, 4]
    assert split(b"a" * 160, DataCoding.SMSC_DEFAULT)[0].short_message == b"a" * 160
    assert split(b"a" * 160, DataCoding.SMSC_DEFAULT)[0].esm_class == 0


def test_udh_8_and_16_bit_headers_have_the_spec_layout() -> None:
    [first, *_] = split(b"x" * 300, DataCoding.BINARY, Method.UDH8, ref=0x1AB)
    assert first.short_message[:6] == bytes([5, 0x00, 3, 0xAB, 3, 1])
    [first, *_] = split(b"x" * 300, DataCoding.BINARY, Method.UDH16, ref=0x1AB)
    assert first.short_message[:7] == bytes([6, 0x08, 4, 0x01, 0xAB, 3, 1])


def test_a_gsm_escape_is_never_cut_in_half() -> None:
    payload = encode_text("a" * 152 + "€" + "b" * 50, DataCoding.SMSC_DEFAULT)
    parts = split(payload, DataCoding.SMSC_DEFAULT, Method.UDH8)
    first_body = parts[0].short_message[6:]
    assert first_body == b"a" * 152  # the ESC moved to the next part with its code
    assert parts[1].short_message[6:8] == b"\x1be"


def test_a_surrogate_pair_is_never_cut_in_half() -> None:
    text = "a" * 66 + "😀" + "b" * 80
    payload = encode_text(text, DataCoding.UCS2)
    parts = split(payload, DataCoding.UCS2, Method.UDH8)
    assert len(parts[0].short_message[6:]) == 132
    assert decode_text(parts[1].short_message[6:], DataCoding.UCS2).startswith("😀")


@settings(max_examples=100, deadline=None)
@given(
    st.text(
        st.sampled_from(sorted(set(GSM7_BASIC + "".join(GSM7_EXTENSION)) - {"\x1b"})), max_size=700
    ),
    st.sampled_from([Method.UDH8, Method.UDH16, Method.SAR]),
)
def test_any_gsm_text_survives_split_and_reassembly(text: str, method: Method) -> None:
    payload = encode_text(text, DataCoding.SMSC_DEFAULT)
    parts = split_pdu(template(0), payload, method, ref=7)
    # No escape sequence is cut: decoding each part alone gives the same text as the whole.
    assert "".join(decode_text(concat_info(x)[1], 0) for x in parts) == text
    assert decode_text(reassemble(parts) or b"", 0) == text


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=400), st.sampled_from([Method.UDH8, Method.UDH16, Method.SAR]))
def test_any_unicode_text_survives_ucs2_split_and_reassembly(text: str, method: Method) -> None:
    text = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    payload = encode_text(text, DataCoding.UCS2)
    parts = split_pdu(template(8), payload, method, ref=300)
    for part in parts:
        body = concat_info(part)[1]
        body.decode("utf-16-be")  # each part is valid UTF-16 on its own: no split pair
    assert decode_text(reassemble(parts) or b"", 8) == text


def test_parts_arriving_out_of_order_and_duplicated_reassemble_once() -> None:
    payload = encode_text(HINDI, DataCoding.UCS2)
    parts = split_pdu(template(8), payload, Method.UDH8, ref=9)
    shuffled = parts + parts[:2]
    random.Random(4).shuffle(shuffled)
    reassembler = Reassembler()
    results = [reassembler.feed(x, now=1.0) for x in shuffled]
    assert [r for r in results if r is not None] == [payload]


def test_groups_are_kept_apart_by_source_destination_and_reference() -> None:
    reassembler = Reassembler()
    info = ConcatInfo(ref=1, total=2, seq=1)
    assert reassembler.add("A", "X", info, b"a1", 0) is None
    assert reassembler.add("B", "X", info, b"b1", 0) is None
    assert reassembler.add("A", "X", ConcatInfo(2, 2, 1), b"c1", 0) is None
    assert len(reassembler) == 3
    assert reassembler.add("A", "X", ConcatInfo(1, 2, 2), b"a2", 0) == b"a1a2"
    assert reassembler.add("B", "X", ConcatInfo(1, 2, 2), b"b2", 0) == b"b1b2"


def test_incomplete_groups_expire_by_the_callers_clock() -> None:
    reassembler = Reassembler(timeout=60)
    reassembler.add("A", "X", ConcatInfo(1, 2, 1), b"a1", now=100.0)
    assert reassembler.expire(now=159.0) == 0
    assert reassembler.expire(now=161.0) == 1
    # The late second part starts a new group instead of completing the expired one.
    assert reassembler.add("A", "X", ConcatInfo(1, 2, 2), b"a2", now=170.0) is None
    assert reassembler.expired == 1


def test_pending_groups_are_bounded() -> None:
    reassembler = Reassembler(max_groups=10)
    for ref in range(50):
        reassembler.add("A", "X", ConcatInfo(ref, 3, 1), b"x", now=0)
    assert len(reassembler) == 10
    assert reassembler.expired == 40


def test_malformed_part_numbers_are_ignored() -> None:
    reassembler = Reassembler()
    assert reassembler.add("A", "X", ConcatInfo(1, 2, 0), b"x", 0) is None
    assert reassembler.add("A", "X", ConcatInfo(1, 2, 3), b"x", 0) is None
    assert len(reassembler) == 0


def test_message_payload_carries_a_long_message_in_one_pdu() -> None:
    payload = encode_text(HINDI, DataCoding.UCS2)
    [pdu] = split_pdu(template(8), payload, Method.PAYLOAD)
    assert pdu.short_message == b""
    back = decode(encode(pdu))
    assert Reassembler().feed(back, 0.0) == payload  # type: ignore[arg-type]


def test_parse_udh_reads_elements_and_rejects_truncation() -> None:
    assert parse_udh(bytes([5, 0, 3, 1, 2, 1]) + b"hi") == ([(0, bytes([1, 2, 1]))], b"hi")
    assert parse_udh(bytes([10, 0, 3, 1])) is None
    assert parse_udh(bytes([4, 0, 3, 1, 2])) is None
    assert parse_udh(b"") is None


def test_a_udh_without_concatenation_is_a_whole_message() -> None:
    pdu = p.DeliverSm(esm_class=UDHI, short_message=bytes([4, 0x05, 2, 0x0B, 0x84]) + b"port")
    assert concat_info(pdu) == (None, b"port")


@pytest.mark.parametrize(
    ("text", "coding", "wire"),
    [
        ("Hi €", DataCoding.SMSC_DEFAULT, b"Hi \x1be"),
        ("@£$", DataCoding.SMSC_DEFAULT, b"\x00\x01\x02"),
        ("😀", DataCoding.UCS2, b"\xd8\x3d\xde\x00"),
        ("नम", DataCoding.UCS2, b"\x09\x28\x09\x2e"),
        ("café", DataCoding.LATIN1, b"caf\xe9"),
        ("plain", DataCoding.IA5, b"plain"),
    ],
)
def test_text_codings_match_their_standards(text: str, coding: int, wire: bytes) -> None:
    assert encode_text(text, coding) == wire
    assert decode_text(wire, coding) == text


def test_text_that_a_coding_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_text("नम", DataCoding.SMSC_DEFAULT)
    with pytest.raises(ValueError):
        encode_text("é", DataCoding.IA5)
    with pytest.raises(ValueError):
        encode_text("x", DataCoding.BINARY)
