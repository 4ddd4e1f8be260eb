"""Property tests: splitting, counting and GSM coding agree for arbitrary text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dakghar.core.text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SMART_REPLACEMENTS,
    Encoding,
    SegmentInfo,
    count_segments,
    gsm7_decode,
    gsm7_encode,
    gsm7_pack,
    gsm7_unpack,
    is_gsm7,
    prepare_body,
    split_segments,
)

GSM_CHARS = [ch for ch in GSM7_BASIC if ch != "\x1b"] + list(GSM7_EXTENSION)
# Weighted towards what makes segmenting interesting: two-septet characters, astral characters
# (surrogate pairs), Indic text and smart-encoding look-alikes.
TRICKY = [*GSM7_EXTENSION, "😀", "🎉", "𝄞", "ह", "्", "ç", "\u200d", *SMART_REPLACEMENTS]

gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700)
mixed_text = st.text(
    alphabet=st.one_of(st.sampled_from(GSM_CHARS), st.sampled_from(TRICKY), st.characters()),
    max_size=700,
)
# Hypothesis favours short strings; a filler prefix puts the interesting characters near the
# 70/67/160/153 boundaries, where splitting can go wrong.
near_boundary = st.builds(
    lambda filler, n, tail: filler * n + tail,
    st.sampled_from(["a", "é", "ह", "€"]),
    st.integers(60, 320),
    mixed_text,
)
any_text = st.one_of(mixed_text, near_boundary)

PROPERTY = settings(max_examples=200, deadline=None)


def units_of(part: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return len(gsm7_encode(part))
    return len(part.encode("utf-16-le", "surrogatepass")) // 2


def assert_split_agrees_with_count(text: str, info: SegmentInfo) -> None:
    parts = split_segments(text, info.encoding)
    assert "".join(parts) == text
    assert len(parts) == info.segments
    sizes = [units_of(p, info.encoding) for p in parts]
    assert sum(sizes) == info.units
    assert info.characters == len(text)
    if info.segments == 1:
        assert info.units <= info.unit_limit_single
        assert info.remaining_in_segment == info.unit_limit_single - info.units
    elif info.segments > 1:
        assert info.units > info.unit_limit_single
        assert all(0 < size <= info.unit_limit_multi for size in sizes)
        assert info.remaining_in_segment == info.unit_limit_multi - sizes[-1]
        # Greedy packing: a segment is short of full only by an indivisible pair that moved on.
        for size in sizes[:-1]:
            assert size >= info.unit_limit_multi - 1


@PROPERTY
@given(any_text)
def test_split_segments_concatenate_to_the_text_within_limits(text: str) -> None:
    info = count_segments(text)
    assert info.encoding is (Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2)
    assert_split_agrees_with_count(text, info)


@PROPERTY
@given(gsm_text)
def test_gsm_text_is_gsm_and_splits_within_septet_limits(text: str) -> None:
    info = count_segments(text)
    assert info.encoding is Encoding.GSM7
    assert_split_agrees_with_count(text, info)


@PROPERTY
@given(any_text)
def test_smart_encoding_sends_gsm_or_the_original(text: str) -> None:
    body, info = prepare_body(text, smart_encoding=True)
    assert info == count_segments(text, smart_encoding=True)
    assert info == count_segments(body)
    if info.encoding is Encoding.UCS2:
        assert body == text
    assert_split_agrees_with_count(body, info)


@PROPERTY
@given(gsm_text)
def test_gsm_encode_decode_round_trips(text: str) -> None:
    septets = gsm7_encode(text)
    assert gsm7_decode(septets) == text
    assert all(s < 0x80 for s in septets)


@PROPERTY
@given(st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_unpack_round_trips(septets: bytes, fill: int) -> None:
    packed = gsm7_pack(septets, fill_bits=fill)
    assert len(packed) == (7 * len(septets) + fill + 7) // 8
    assert gsm7_unpack(packed, len(septets), fill_bits=fill) == septets


@PROPERTY
@given(st.binary(max_size=300))
def test_decode_never_fails_on_arbitrary_bytes(data: bytes) -> None:
    text = gsm7_decode(data)
    assert is_gsm7(text.replace("?", ""))
