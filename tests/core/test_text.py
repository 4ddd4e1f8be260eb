"""Encoding choice, GSM 03.38 tables and segment counting/splitting (dakghar.core.text)."""

from __future__ import annotations

import pytest

from dakghar.core.text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    SegmentInfo,
    count_segments,
    gsm7_decode,
    gsm7_encode,
    gsm7_pack,
    gsm7_unpack,
    is_gsm7,
    split_segments,
)

# TS 23.038 §6.2.1, written out independently of the module's own table (code -> character).
SPEC_BASIC = {
    0x00: "@", 0x01: "£", 0x02: "$", 0x03: "¥", 0x04: "è", 0x05: "é", 0x06: "ù", 0x07: "ì",
    0x08: "ò", 0x09: "Ç", 0x0A: "\n", 0x0B: "Ø", 0x0C: "ø", 0x0D: "\r", 0x0E: "Å", 0x0F: "å",
    0x10: "Δ", 0x11: "_", 0x12: "Φ", 0x13: "Γ", 0x14: "Λ", 0x15: "Ω", 0x16: "Π", 0x17: "Ψ",
    0x18: "Σ", 0x19: "Θ", 0x1A: "Ξ", 0x1C: "Æ", 0x1D: "æ", 0x1E: "ß", 0x1F: "É",
    0x20: " ", 0x21: "!", 0x22: '"', 0x23: "#", 0x24: "¤", 0x25: "%", 0x26: "&", 0x27: "'",
    0x28: "(", 0x29: ")", 0x2A: "*", 0x2B: "+", 0x2C: ",", 0x2D: "-", 0x2E: ".", 0x2F: "/",
    **{0x30 + d: str(d) for d in range(10)},
    0x3A: ":", 0x3B: ";", 0x3C: "<", 0x3D: "=", 0x3E: ">", 0x3F: "?",
    0x40: "¡", **{0x41 + i: chr(ord("A") + i) for i in range(26)},
    0x5B: "Ä", 0x5C: "Ö", 0x5D: "Ñ", 0x5E: "Ü", 0x5F: "§",
    0x60: "¿", **{0x61 + i: chr(ord("a") + i) for i in range(26)},
    0x7B: "ä", 0x7C: "ö", 0x7D: "ñ", 0x7E: "ü", 0x7F: "à",
}  # fmt: skip
SPEC_EXTENSION = {
    0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
    0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
}  # fmt: skip


def test_basic_table_matches_the_specification_code_for_code() -> None:
    assert len(SPEC_BASIC) == 127  # 128 codes minus ESC
    for code, ch in SPEC_BASIC.items():
        assert GSM7_BASIC[code] == ch
        assert gsm7_encode(ch) == bytes([code])
        assert gsm7_decode(bytes([code])) == ch


def test_extension_table_matches_the_specification_code_for_code() -> None:
    assert {code: ch for ch, code in GSM7_EXTENSION.items()} == SPEC_EXTENSION
    for code, ch in SPEC_EXTENSION.items():
        assert gsm7_encode(ch) == bytes([0x1B, code])
        assert gsm7_decode(bytes([0x1B, code])) == ch


def test_every_gsm_character_round_trips_in_one_string() -> None:
    text = "".join(SPEC_BASIC.values()) + "".join(SPEC_EXTENSION.values())
    assert is_gsm7(text)
    encoded = gsm7_encode(text)
    assert len(encoded) == len(SPEC_BASIC) + 2 * len(SPEC_EXTENSION)
    assert gsm7_decode(encoded) == text


@pytest.mark.parametrize("ch", ["`", "\t", "\x00", "\x7f", "ç", "á", "ê", "“", "—", "ह", "😀", "α"])
def test_characters_outside_the_alphabet_are_not_gsm(ch: str) -> None:
    assert not is_gsm7(f"abc{ch}def")
    with pytest.raises(ValueError, match=f"U\\+{ord(ch):04X}"):
        gsm7_encode(f"abc{ch}def")


def test_decode_is_tolerant_of_junk() -> None:
    assert gsm7_decode(b"ab\x80\xffc") == "ab??c"
    assert gsm7_decode(b"abc\x1b") == "abc"  # trailing lone ESC dropped
    assert gsm7_decode(b"\x1b\x41") == "A"  # unknown extension code: the basic character
    assert gsm7_decode(b"\x1b\x1b") == " "  # reserved second escape: a space
    assert gsm7_decode(b"\x1b\x90x") == "?x"


def test_pack_matches_the_textbook_example_and_unpacks_back() -> None:
    assert gsm7_pack(b"hellohello").hex() == "e8329bfd4697d9ec37"
    assert gsm7_unpack(bytes.fromhex("e8329bfd4697d9ec37"), 10) == b"hellohello"


def test_pack_with_fill_bits_aligns_after_a_udh() -> None:
    septets = gsm7_encode("Hi {there}")
    for fill in range(7):
        packed = gsm7_pack(septets, fill_bits=fill)
        assert len(packed) == (7 * len(septets) + fill + 7) // 8
        assert gsm7_unpack(packed, len(septets), fill_bits=fill) == septets


def test_unpack_refuses_more_septets_than_the_data_holds() -> None:
    with pytest.raises(ValueError):
        gsm7_unpack(b"\x00" * 7, 9)


def test_empty_text_has_no_segments() -> None:
    info = count_segments("")
    assert info == SegmentInfo(Encoding.GSM7, 0, 0, 160, 153, 0, 160)
    assert split_segments("", Encoding.GSM7) == []


@pytest.mark.parametrize(
    ("length", "segments", "remaining"),
    [(1, 1, 159), (160, 1, 0), (161, 2, 145), (306, 2, 0), (307, 3, 152), (1530, 10, 0)],
)
def test_gsm_boundaries(length: int, segments: int, remaining: int) -> None:
    info = count_segments("a" * length)
    assert (info.encoding, info.segments, info.units) == (Encoding.GSM7, segments, length)
    assert info.remaining_in_segment == remaining
    assert (info.unit_limit_single, info.unit_limit_multi) == (160, 153)
    assert info.encoding.value == "GSM-7"


def test_extension_characters_count_two_septets() -> None:
    info = count_segments("€" * 80)
    assert (info.units, info.characters, info.segments) == (160, 80, 1)
    assert count_segments("€" * 80 + "a").segments == 2


def test_extension_character_is_not_split_across_segments() -> None:
    # 306 septets would fit two segments by division, but the € would straddle septets 153/154.
    text = "a" * 152 + "€" + "a" * 152
    info = count_segments(text)
    assert (info.units, info.segments, info.remaining_in_segment) == (306, 3, 152)
    parts = split_segments(text, Encoding.GSM7)
    assert parts == ["a" * 152, "€" + "a" * 151, "a"]
    assert [len(gsm7_encode(p)) for p in parts] == [152, 153, 1]


def test_extension_character_ending_exactly_at_a_boundary_stays() -> None:
    text = "a" * 151 + "€" + "b" * 10
    assert split_segments(text, Encoding.GSM7) == ["a" * 151 + "€", "b" * 10]


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (67 * 2 + 1, 3)]
)
def test_ucs2_boundaries(length: int, segments: int) -> None:
    info = count_segments("ह" * length)
    assert (info.encoding, info.segments, info.units) == (Encoding.UCS2, segments, length)
    assert (info.unit_limit_single, info.unit_limit_multi) == (70, 67)
    assert info.encoding.value == "UCS-2"


def test_emoji_counts_two_units_but_one_character() -> None:
    info = count_segments("ok 😀")
    assert (info.encoding, info.units, info.characters) == (Encoding.UCS2, 5, 4)


def test_emoji_at_the_ucs2_boundary_moves_to_the_next_segment() -> None:
    text = "x" * 66 + "😀" + "y" * 10
    info = count_segments(text)
    assert (info.units, info.segments) == (78, 2)
    assert split_segments(text, Encoding.UCS2) == ["x" * 66, "😀" + "y" * 10]
    # 66 + 2 + 66 = 134 units would fit two segments by division: it takes three.
    text = "x" * 66 + "😀" + "y" * 66
    assert count_segments(text).segments == 3
    assert split_segments(text, Encoding.UCS2) == ["x" * 66, "😀" + "y" * 65, "y"]


def test_emoji_that_fits_a_single_segment_is_not_pushed() -> None:
    assert count_segments("x" * 68 + "😀").segments == 1


def test_hindi_text_is_ucs2() -> None:
    text = "नमस्ते, आपका ओटीपी 482913 है। इसे किसी के साथ साझा न करें।"
    info = count_segments(text)
    assert info.encoding is Encoding.UCS2
    assert (info.units, info.characters, info.segments) == (len(text), len(text), 1)


@pytest.mark.parametrize(
    "text", ["வணக்கம் உலகம்", "আপনার কোড ১২৩৪", "Привет", "你好", "مرحبا", "Γειά σου"]
)
def test_other_scripts_are_ucs2(text: str) -> None:
    assert count_segments(text).encoding is Encoding.UCS2


def test_greek_capitals_in_the_alphabet_stay_gsm() -> None:
    assert count_segments("ΔΦΓΛΩΠΨΣΘΞ").encoding is Encoding.GSM7


def test_one_non_gsm_character_makes_the_whole_message_ucs2() -> None:
    info = count_segments("a" * 100 + "ç")
    assert (info.encoding, info.units, info.segments) == (Encoding.UCS2, 101, 2)


def test_cr_and_lf_are_single_septets() -> None:
    info = count_segments("line one\r\nline two\n")
    assert (info.encoding, info.units) == (Encoding.GSM7, 19)
    assert gsm7_encode("\r\n") == b"\r\n"


def test_form_feed_is_an_extension_character() -> None:
    assert gsm7_encode("\f") == b"\x1b\n"
    assert count_segments("\f").units == 2


def test_split_as_ucs2_works_on_gsm_text() -> None:
    assert split_segments("a" * 71, Encoding.UCS2) == ["a" * 67, "a" * 4]


def test_split_as_gsm_refuses_non_gsm_text() -> None:
    with pytest.raises(ValueError, match="U\\+0928"):
        split_segments("नमस्ते", Encoding.GSM7)
