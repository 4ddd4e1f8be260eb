"""Smart encoding: look-alikes replaced only when that makes the whole body GSM-7."""

from __future__ import annotations

import pytest

from dakghar.core.text import (
    SMART_REPLACEMENTS,
    Encoding,
    count_segments,
    is_gsm7,
    prepare_body,
    smart_normalize,
)


def test_every_replacement_turns_a_non_gsm_character_into_gsm_text() -> None:
    for original, replacement in SMART_REPLACEMENTS.items():
        assert not is_gsm7(original), original
        assert is_gsm7(replacement), original


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("It’s “done”", 'It\'s "done"'),
        ("Wait…", "Wait..."),
        ("9–5 — daily", "9-5 - daily"),
        ("• one\n• two", "- one\n- two"),
        ("₹\u00a0500", None),  # the rupee sign is not GSM: nothing changes
        ("50\u00a0km\u202fh", "50 km h"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("ﬁnal ﬂight", "final flight"),
        ("5′ 11″", "5' 11\""),
        ("«Bonjour»", '"Bonjour"'),
        ("Cafe\u0301", "Café"),  # decomposed accent composes into the GSM é
        ("tab\tstop", "tab stop"),
    ],
)
def test_look_alikes_are_replaced_with_gsm_equivalents(text: str, sent: str | None) -> None:
    body, info = prepare_body(text, smart_encoding=True)
    if sent is None:
        assert (body, info.encoding) == (text, Encoding.UCS2)
    else:
        assert (body, info.encoding) == (sent, Encoding.GSM7)
        assert info == count_segments(sent)


def test_hindi_with_curly_quotes_is_sent_untouched_as_ucs2() -> None:
    text = "“नमस्ते” — आपका कोड 1234 है…"
    body, info = prepare_body(text, smart_encoding=True)
    assert body == text
    assert info == count_segments(text)
    assert info.encoding is Encoding.UCS2
    assert count_segments(text, smart_encoding=True) == info


def test_emoji_with_curly_quotes_keeps_both() -> None:
    text = "“Party” 🎉"
    assert prepare_body(text, smart_encoding=True) == (text, count_segments(text))


def test_zero_width_joiner_inside_indic_text_survives() -> None:
    text = "क्\u200dष"
    assert prepare_body(text, smart_encoding=True)[0] == text


def test_smart_encoding_can_save_segments() -> None:
    text = "It’s " + "a" * 100
    assert count_segments(text).segments == 2  # 105 UCS-2 units
    info = count_segments(text, smart_encoding=True)
    assert (info.encoding, info.segments, info.units) == (Encoding.GSM7, 1, 105)


def test_ellipsis_growth_is_counted_on_the_sent_text() -> None:
    text = "a" * 158 + "…"
    info = count_segments(text, smart_encoding=True)
    assert (info.encoding, info.units, info.segments, info.characters) == (
        Encoding.GSM7,
        161,
        2,
        161,
    )


def test_gsm_text_is_left_alone_by_smart_encoding() -> None:
    text = 'Plain "quotes" and €5 {ok}'
    assert prepare_body(text, smart_encoding=True) == (text, count_segments(text))


def test_without_smart_encoding_the_body_is_never_changed() -> None:
    text = "It’s “done”…"
    body, info = prepare_body(text, smart_encoding=False)
    assert (body, info.encoding) == (text, Encoding.UCS2)


def test_body_of_only_invisible_characters_becomes_empty() -> None:
    body, info = prepare_body("\u200b\ufeff", smart_encoding=True)
    assert (body, info.segments) == ("", 0)


def test_normalize_is_idempotent_on_its_own_output() -> None:
    text = "“a” – b… ﬁ\u00a0•"
    once = smart_normalize(text)
    assert smart_normalize(once) == once
