"""parse_number on real-world inputs: what is accepted, normalised and described, and what not."""

from __future__ import annotations

import pytest

from dakghar.core.numbers import (
    MAX_INPUT_LENGTH,
    PhoneNumber,
    circle_for,
    indian_circles,
    is_indian,
    mask,
    parse_number,
)
from dakghar.errors import CountryNotAllowed, InvalidNumber, ValidationError

INDIAN_FORMS = [
    "+919812345678",
    "+91 98123 45678",
    "+91-98123-45678",
    "+91 (98123) 45678",
    "098123-45678",
    "09812345678",
    "9812345678",
    "98123 45678",
    "0091 98123 45678",
    "0091-9812345678",
    "(+91) 98123 45678",
    "+91.981.234.5678",
    "tel:+91-98123-45678",
    "TEL:+919812345678",
    "  +91 98123 45678\t",
    "\n9812345678\n",
    "+९१ ९८१२३ ४५६७८",  # Devanagari digits
    "०९८१२३४५६७८",
    "+９１ ９８１２３ ４５６７８",  # full-width digits
    "++919812345678",
]


@pytest.mark.parametrize("raw", INDIAN_FORMS)
def test_common_indian_forms_parse_to_one_e164(raw: str) -> None:
    number = parse_number(raw)
    assert number == PhoneNumber(
        e164="+919812345678",
        country="IN",
        country_code=91,
        national="9812345678",
        carrier="Vi",
        region=None,
        is_mobile=True,
    )


@pytest.mark.parametrize(
    ("raw", "default_region", "e164", "country"),
    [
        ("+1 415 555 2671", "IN", "+14155552671", "US"),
        ("(415) 555-2671", "US", "+14155552671", "US"),
        ("1-415-555-2671", "US", "+14155552671", "US"),
        ("011 91 98123 45678", "US", "+919812345678", "IN"),
        ("+44 7400 123456", "IN", "+447400123456", "GB"),
        ("07400 123456", "GB", "+447400123456", "GB"),
        ("+44 (0) 7400 123456", "IN", "+447400123456", "GB"),
        ("00 44 7400 123 456", "IN", "+447400123456", "GB"),
        ("+971 50 123 4567", "IN", "+971501234567", "AE"),
        ("050 123 4567", "AE", "+971501234567", "AE"),
        ("00971501234567", "IN", "+971501234567", "AE"),
        ("+65 8123 4567", "IN", "+6581234567", "SG"),
        ("8123 4567", "SG", "+6581234567", "SG"),
        ("+880 1812-345678", "IN", "+8801812345678", "BD"),
        ("01812-345678", "BD", "+8801812345678", "BD"),
        ("+8801712345678", "IN", "+8801712345678", "BD"),
    ],
)
def test_mobiles_of_other_countries_parse_in_their_usual_forms(
    raw: str, default_region: str, e164: str, country: str
) -> None:
    number = parse_number(raw, default_region=default_region)
    assert (number.e164, number.country, number.is_mobile, number.region) == (
        e164,
        country,
        True,
        None,
    )


def test_us_numbers_count_as_mobile_because_nanp_cannot_tell_them_apart() -> None:
    assert parse_number("+1 201-555-0123").is_mobile


def test_other_countries_keep_the_carrier_name_phonenumbers_gives() -> None:
    assert parse_number("+971 50 123 4567").carrier == "Etisalat"
    assert parse_number("+8801712345678").carrier == "Grameenphone"
    assert parse_number("+1 415 555 2671").carrier is None


def test_the_national_part_is_the_significant_number_without_trunk_prefix() -> None:
    assert parse_number("07400 123456", default_region="GB").national == "7400123456"


@pytest.mark.parametrize("e164", [f"+91700000000{i}" for i in range(1, 6)])
def test_sandbox_magic_numbers_are_valid_indian_mobiles(e164: str) -> None:
    number = parse_number(e164)
    assert (number.e164, number.country, number.is_mobile) == (e164, "IN", True)
    assert parse_number(e164[3:]).e164 == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("tel:", "empty"),
        ("abc", "letters"),
        ("98123 abc 45678", "letters"),
        ("+91 98123 45678 ext. 12", "letters"),
        ("1-800-FLOWERS", "letters"),
        ("None", "letters"),
        ("null", "letters"),
        ("undefined", "letters"),
        ("NaN", "letters"),
        ("'; DROP TABLE messages; --", "letters"),
        ("<script>alert(1)</script>", "letters"),
        ("98123\u0915 45678", "letters"),  # a Devanagari letter among digits
        ("📱 9812345678", "bad_characters"),
        ("☎️☎️☎️", "bad_characters"),
        ("98123*45678", "bad_characters"),
        ("9812345678\x00", "bad_characters"),
        ("+91 98123 45678#12", "bad_characters"),
        ("+", "not_a_number"),
        ("---", "not_a_number"),
        ("12", "too_short"),
        ("98123", "too_short"),
        ("+91 98123 45678 9", "invalid"),  # 11 digits is a possible length in India
        ("+91 98123 45678 9012", "too_long"),
        ("9812345678901234567", "too_long"),
        ("+999 1234 5678", "no_country_code"),
        ("+44 7700 900123", "invalid"),  # Ofcom's drama range, not allocated
        ("+91 50000 00000", "invalid"),
    ],
)
def test_junk_and_malformed_input_is_an_invalid_number(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number(raw)
    assert caught.value.extra == {"reason": reason}
    assert caught.value.code == "invalid_number"
    assert caught.value.status == 422


def test_a_number_without_country_code_and_without_default_region_is_rejected() -> None:
    with pytest.raises(InvalidNumber, match="country code"):
        parse_number("98123 45678", default_region="")


def test_input_longer_than_64_characters_is_rejected_before_parsing() -> None:
    padded = "+919812345678".ljust(MAX_INPUT_LENGTH + 1)
    with pytest.raises(InvalidNumber, match="longer than 64"):
        parse_number(padded)
    with pytest.raises(InvalidNumber, match="longer than 64"):
        parse_number("9" * 10_240)
    assert parse_number("+919812345678".ljust(MAX_INPUT_LENGTH)).e164 == "+919812345678"


def test_non_text_input_is_an_invalid_number_not_a_type_error() -> None:
    with pytest.raises(InvalidNumber):
        parse_number(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidNumber):
        parse_number(9812345678)  # type: ignore[arg-type]


def test_error_details_never_echo_the_input() -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number("<b>98123</b>")
    assert "<b>" not in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+91 11 2345 6789", "fixed_line"),  # Delhi landline
        ("011-2345-6789", "fixed_line"),
        ("+44 121 234 5678", "fixed_line"),
        ("+971 2 234 5678", "fixed_line"),
        ("+65 6123 4567", "fixed_line"),
        ("+880 2-7111234", "fixed_line"),
        ("+91 1800 12 3456", "toll_free"),
        ("+1 800-234-5678", "toll_free"),
        ("+44 800 123 4567", "toll_free"),
        ("+91 1861 123 456 789", "premium_rate"),
        ("+1 900-234-5678", "premium_rate"),
        ("+44 901 234 5678", "premium_rate"),
        ("+91 1860 345 1234", "shared_cost"),
        ("+971 700 0 12345", "shared_cost"),
        ("+44 56 1234 5678", "voip"),
        ("+65 3123 4567", "voip"),
        ("+880 9604-123456", "voip"),
        ("+44 70 1234 5678", "personal_number"),
        ("+1 500-234-5678", "personal_number"),
        ("+44 76 4012 3456", "pager"),
        ("+91 140 930 5260", "uan"),
        ("+971 600 212345", "uan"),
        ("+800 1234 5678", "non_geographic"),
    ],
)
def test_numbers_that_cannot_take_an_sms_are_refused_with_their_kind(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number(raw)
    assert caught.value.extra == {"reason": reason}


def test_a_landline_is_refused_with_a_detail_saying_so() -> None:
    with pytest.raises(InvalidNumber, match="landline; SMS needs a mobile number"):
        parse_number("+91 11 2345 6789")


def test_a_country_outside_the_allow_list_is_not_allowed() -> None:
    with pytest.raises(CountryNotAllowed) as caught:
        parse_number("+44 7400 123456", allowed_countries={"IN"})
    assert caught.value.code == "country_not_allowed"
    assert caught.value.extra == {"country": "GB"}
    assert isinstance(caught.value, ValidationError)


def test_the_allow_list_applies_to_the_e164_fast_path_too() -> None:
    with pytest.raises(CountryNotAllowed):
        parse_number("+919812345678", allowed_countries=["AE", "SG"])


def test_countries_on_the_allow_list_pass_whatever_their_case() -> None:
    assert parse_number("+919812345678", allowed_countries=["in"]).country == "IN"
    assert parse_number("+6581234567", allowed_countries=("IN", "SG")).country == "SG"


def test_a_single_country_given_as_a_string_is_one_country_not_its_letters() -> None:
    assert parse_number("+919812345678", allowed_countries="IN").country == "IN"
    with pytest.raises(CountryNotAllowed):
        parse_number("+6581234567", allowed_countries="SG IN")


def test_an_empty_allow_list_allows_no_country() -> None:
    with pytest.raises(CountryNotAllowed):
        parse_number("+919812345678", allowed_countries=())


def test_an_invalid_number_is_reported_as_invalid_before_its_country_is_judged() -> None:
    with pytest.raises(InvalidNumber):
        parse_number("+44 121 234 5678", allowed_countries={"IN"})


@pytest.mark.parametrize(
    ("e164", "carrier"),
    [
        ("+919876543210", "Airtel"),
        ("+917012345678", "Jio"),
        ("+919812345678", "Vi"),  # allotted to Idea
        ("+919830012345", "Vi"),  # allotted to Vodafone
        ("+918123456789", "Airtel"),  # allotted to Tata Docomo
        ("+919412345678", "BSNL"),  # "BSNL MOBILE"
        ("+917031123456", None),  # Aircel is defunct
    ],
)
def test_indian_carriers_are_normalised_to_todays_brands(e164: str, carrier: str | None) -> None:
    assert parse_number(e164).carrier == carrier
    assert parse_number(e164[3:]).carrier == carrier  # the slow path agrees


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        ("+919599123456", "Delhi"),
        ("+919205123456", "Delhi"),
        ("+917356123456", "Kerala"),
        ("+917807123456", "Himachal Pradesh"),
        ("+919512123456", "Gujarat"),
        ("+917301123456", "Bihar"),
        ("+917809123456", "Odisha"),
        ("+917339812345", "Rajasthan"),  # MSC code 73398
        ("+917340712345", "Punjab"),  # MSC code 73407: same 4 digits, another circle
        ("+917340612345", "Rajasthan"),
        ("+917550212345", "Tamil Nadu"),
        ("+917550412345", "Delhi"),
    ],
)
def test_circle_is_looked_up_from_the_series_table(e164: str, region: str) -> None:
    assert parse_number(e164).region == region


def test_circle_is_none_for_a_series_the_table_does_not_know() -> None:
    assert parse_number("+919812345678").region is None
    assert circle_for("9812345678") is None


def test_the_circle_list_has_the_22_licensed_service_areas() -> None:
    circles = indian_circles()
    assert len(circles) == 22
    assert {"Delhi", "Mumbai", "Karnataka", "UP East", "UP West", "Kolkata"} <= set(
        circles.values()
    )


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+919812345678", "+91******5678"),
        ("+14155552671", "+1******2671"),
        ("+447400123456", "+44******3456"),
        ("+971501234567", "+971*****4567"),
        ("+6581234567", "+65****4567"),
        ("+8801812345678", "+880******5678"),
    ],
)
def test_mask_keeps_only_country_code_and_last_four_digits(e164: str, masked: str) -> None:
    assert mask(e164) == masked


@pytest.mark.parametrize("junk", ["", "9812345678", "+91 98123 45678", "<script>", "+"])
def test_mask_of_anything_not_e164_reveals_nothing(junk: str) -> None:
    assert mask(junk) == "***"


def test_mask_of_a_short_number_hides_every_digit() -> None:
    assert mask("+6512345") == "+65*****"


def test_is_indian_tells_plus_91_numbers_apart() -> None:
    assert is_indian("+919812345678")
    assert is_indian("+911123456789")
    assert not is_indian("+14155552671")
    assert not is_indian("919812345678")
    assert not is_indian("+91")
