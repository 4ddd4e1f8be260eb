"""DLT template compilation and matching."""

from __future__ import annotations

import pytest

from dakghar.compliance.templates import Template, TemplateIndex, anchor_words, validate
from dakghar.errors import ValidationError

OTP = Template("1107000000000001", "ACMEBK", "service", "Your OTP is {#var#}. Do not share it.")
BAL = Template("1107000000000002", "ACMEBK", "service", "Dear {#var#}, balance is Rs {#var#}")
SALE = Template("1107000000000003", "ACMESL", "banking", "Flat {#var#} off today")


def index() -> TemplateIndex:
    return TemplateIndex([OTP, BAL, SALE])


def test_placeholders_match_any_text_up_to_thirty_characters() -> None:
    idx = index()
    assert idx.match("ACMEBK", "Your OTP is 493021. Do not share it.") == OTP
    assert idx.match("ACMEBK", "Dear Asha K, balance is Rs 1,204.50") == BAL
    assert idx.match("ACMEBK", "Dear " + "x" * 30 + ", balance is Rs 5") == BAL
    assert idx.match("ACMEBK", "Dear " + "x" * 31 + ", balance is Rs 5") is None
    assert idx.match("ACMEBK", "Dear Asha, balance is Rs 5 and more words") == BAL  # ≤ 30
    assert idx.match("ACMEBK", "Your OTP is 1. Share it.") is None


def test_whitespace_runs_and_header_case_are_lenient() -> None:
    idx = index()
    assert idx.match("acmebk", "Your  OTP is 1234.\nDo not share it.") == OTP


def test_a_template_only_serves_its_own_header() -> None:
    idx = index()
    assert idx.match("ACMESL", "Your OTP is 1234. Do not share it.") is None
    assert idx.match("ACMESL", "Flat 50% off today") == SALE
    assert idx.match(None, "Flat 50% off today") is None
    assert idx.headers() == {"ACMEBK", "ACMESL"}


def test_regex_metacharacters_in_templates_are_literal() -> None:
    idx = TemplateIndex([Template("9", "H", "service", "Pay (now) at a.b/c? {#var#} *")])
    assert idx.match("H", "Pay (now) at a.b/c? 12 *")
    assert idx.match("H", "Pay now at axb/c? 12 *") is None


def test_thousands_of_templates_pick_the_right_one() -> None:
    many = [Template(str(i), "BIG", "service", f"Order {i} is {{#var#}} now") for i in range(3000)]
    idx = TemplateIndex(many)
    assert len(idx) == 3000
    hit = idx.match("BIG", "Order 2718 is out for delivery now")
    assert hit is not None and hit.id == "2718"


def test_malformed_placeholders_are_refused() -> None:
    with pytest.raises(ValidationError):
        validate("Hello {#name#}")
    with pytest.raises(ValidationError):
        validate("   ")
    assert validate(" Hi {#var#} ") == "Hi {#var#}"


def test_anchor_words_leave_out_words_glued_to_placeholders() -> None:
    words = anchor_words("Rs{#var#} paid to {#var#}x by card")
    assert words == {"paid", "to", "by", "card", "paid to", "by card"}
    assert anchor_words("{#var#} {#var#}") == frozenset()


def test_bodies_find_their_template_through_any_bucket() -> None:
    glued = Template("1", "H", "service", "Rs{#var#} paid to {#var#}x by card")
    bare = Template("2", "H", "service", "{#var#}-{#var#}")
    idx = TemplateIndex([glued, bare, Template("3", "H", "service", "paid {#var#}")])
    assert idx.match("H", "Rs500 paid   to\nAshax by card") == glued
    assert idx.match("H", "abc-def") == bare
    assert idx.match("H", "paid 12") is not None and idx.match("H", "paid 12").id == "3"  # type: ignore[union-attr]


def test_templates_sharing_one_vocabulary_are_told_apart() -> None:
    words = ["your", "order", "is", "now", "due", "paid", "sent"]
    texts = sorted(
        {
            f"Dear {{#var#}}, {a} {b} {c} {d}"
            for a in words
            for b in words
            for c in words
            for d in words
        }
    )
    many = [Template(str(i), "H", "service", t) for i, t in enumerate(texts)]
    idx = TemplateIndex(many)
    for t in many[::97]:
        body = t.text.replace("{#var#}", "Asha")
        found = idx.match("H", body)
        assert found is not None and found.text == t.text
