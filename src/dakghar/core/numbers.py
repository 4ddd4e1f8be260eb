"""Recipient phone numbers: parse any common form into one checked, described `PhoneNumber`.

The API validates every ``to`` with `parse_number` (errors become ``invalid_number`` /
``country_not_allowed`` problems); the pipeline routes on `PhoneNumber.carrier` and
`PhoneNumber.region`; compliance (DND) and rate limits key on `PhoneNumber.e164`; logs show
`mask`. Pure: no I/O except reading the small tables in ``core/data/`` once, on first use.
Validation and carrier names come from ``phonenumbers``; its ``geocoder`` is never imported
(about 100 MB, and it knows no telecom circles for mobiles). What is accepted and why:
docs/numbers.md.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import IO

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, carrier

from dakghar.errors import CountryNotAllowed, InvalidNumber

MAX_INPUT_LENGTH = 64
# Unless told to keep them, phonenumbers asks re.compile for each metadata pattern on every use
# (a look-up in re's own bounded cache): kept, 8.5 -> 7.6 us per Indian number parsed. Older
# 9.x releases lack the switch and simply go without.
if hasattr(phonenumbers, "enable_pattern_cache"):
    phonenumbers.enable_pattern_cache()

# Already-canonical Indian numbers skip phonenumbers' parser (the costly part); the type check
# below still runs on phonenumbers' own metadata, so both paths give the same verdict.
_E164_INDIA = re.compile(r"\+91([1-9][0-9]{9})")
_E164 = re.compile(r"\+([0-9]{2,15})")
_INDIA_E164_LOOSE = re.compile(r"\+91[0-9]{6,13}")

_NUMBER_PUNCTUATION = frozenset("+＋./／．~～")
_NUMBER_PUNCTUATION_CATEGORIES = frozenset({"Pd", "Ps", "Pe", "Zs"})  # dashes, brackets, spaces

_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
# Why each other type is refused: an SMS gateway bills per message and promises delivery.
_REFUSED_TYPES: dict[int, tuple[str, str]] = {
    PhoneNumberType.FIXED_LINE: ("fixed_line", "a landline"),
    PhoneNumberType.TOLL_FREE: ("toll_free", "a toll-free number"),
    PhoneNumberType.PREMIUM_RATE: ("premium_rate", "a premium-rate number"),
    PhoneNumberType.SHARED_COST: ("shared_cost", "a shared-cost number"),
    PhoneNumberType.VOIP: ("voip", "a VoIP number"),
    PhoneNumberType.PERSONAL_NUMBER: ("personal_number", "a personal (follow-me) number"),
    PhoneNumberType.PAGER: ("pager", "a pager number"),
    PhoneNumberType.UAN: ("uan", "a universal access (company) number"),
    PhoneNumberType.VOICEMAIL: ("voicemail", "a voicemail access number"),
}

# phonenumbers names the operator a series was first allotted to; these are today's brands.
# Aircel and S Tel closed down, so their series name nobody useful (None).
_INDIAN_BRANDS: dict[str, str | None] = {
    "Airtel": "Airtel",
    "Vodafone": "Vi",
    "Idea": "Vi",
    "Tata Docomo": "Airtel",
    "Telenor": "Airtel",
    "Telewings": "Airtel",
    "Uninor": "Airtel",
    "Reliance Jio": "Jio",
    "BSNL MOBILE": "BSNL",
    "MTNL": "MTNL",
    "Aircel": None,
    "S TEL": None,
}

# phonenumbers' carrier prefixes for +91 are at most 5 national digits (a test guards this), so
# the answer for a 5-digit series holds for every number in it.
_INDIA_CARRIER_PREFIX = 5


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A valid, SMS-capable number and what its numbering plan tells about it."""

    e164: str  # "+919812345678"
    country: str  # ISO 3166 region, e.g. "IN"
    country_code: int  # 91
    national: str  # national significant number, digits only: "9812345678"
    carrier: str | None  # allocated operator, normalised ("Vi", "Jio"); a guess under MNP
    region: str | None  # Indian telecom circle (LSA), e.g. "Delhi"; None when unknown
    is_mobile: bool


def parse_number(
    raw: str,
    default_region: str = "IN",
    allowed_countries: Collection[str] | None = None,
) -> PhoneNumber:
    """Parse ``raw`` into a `PhoneNumber`, or raise `InvalidNumber` / `CountryNotAllowed`.

    ``carrier`` is the *allocated* operator of the number's series: since mobile number
    portability (MNP) it is a best guess, and only an HLR lookup knows the serving network.
    """
    # Canonical input needs no cleaning: the pattern admits nothing but "+91" and digits.
    match = _E164_INDIA.fullmatch(raw) if type(raw) is str else None
    text = raw
    if match is None:
        text = _clean(raw)
        match = _E164_INDIA.fullmatch(text)
    if match is not None:
        national = match[1]
        number = phonenumbers.PhoneNumber(country_code=91, national_number=int(national))
        number_type = phonenumbers.number_type(number)
        # +91 belongs to India alone, so a known type here is exactly is_valid_number().
        if number_type == PhoneNumberType.UNKNOWN:
            raise InvalidNumber("Number is not a valid number for IN.", extra=_why("invalid"))
        country, country_code, e164 = "IN", 91, text
    else:
        number = _parse_any(text, default_region)
        national = phonenumbers.national_significant_number(number)
        country = phonenumbers.region_code_for_number(number) or ""
        country_code = number.country_code or 0  # always set after a successful parse
        number_type = phonenumbers.number_type(number)
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)

    if number_type not in _MOBILE_TYPES:
        reason, what = _REFUSED_TYPES.get(number_type, ("not_mobile", "not a mobile number"))
        raise InvalidNumber(f"Number is {what}; SMS needs a mobile number.", extra=_why(reason))
    if isinstance(allowed_countries, str):  # "IN" is one country, not the letters I and N
        allowed_countries = (allowed_countries,)
    if allowed_countries is not None and country not in {c.upper() for c in allowed_countries}:
        raise CountryNotAllowed(
            f"Numbers in {country} are not allowed for this account.",
            extra={"country": country},
        )

    if country_code == 91:
        brand = _indian_carrier(national[:_INDIA_CARRIER_PREFIX])
        region = circle_for(national)
    else:
        brand = carrier.name_for_valid_number(number, "en") or None
        region = None
    return PhoneNumber(
        e164=e164,
        country=country,
        country_code=country_code,
        national=national,
        carrier=brand,
        region=region,
        is_mobile=True,
    )


def circle_for(national: str) -> str | None:
    """The Indian telecom circle (LSA name) a national mobile number's series was allotted in."""
    series = _indian_series()
    return series.get(national[:5]) or series.get(national[:4])


def mask(e164: str) -> str:
    """``+91******5678``: country code and last four digits only, for logs."""
    match = _E164.fullmatch(e164)
    if match is None:
        return "***"
    digits = match[1]
    cc_length = next(
        (n for n in (1, 2, 3) if int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE), 0
    )
    cc, rest = digits[:cc_length], digits[cc_length:]
    shown = 4 if len(rest) > 6 else 0  # a short number would be half revealed
    return f"+{cc}{'*' * (len(rest) - shown)}{rest[len(rest) - shown :]}"


def is_indian(e164: str) -> bool:
    """Whether an E.164 string is an Indian (+91) number."""
    return _INDIA_E164_LOOSE.fullmatch(e164) is not None


def _clean(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidNumber("Number must be a string.", extra=_why("not_text"))
    if len(raw) > MAX_INPUT_LENGTH:  # before any parsing: a cheap guard against huge inputs
        raise InvalidNumber(
            f"Number is longer than {MAX_INPUT_LENGTH} characters.", extra=_why("too_long")
        )
    text = raw.strip()
    if text[:4].lower() == "tel:":
        text = text[4:].strip()
    if not text:
        raise InvalidNumber("Number is empty.", extra=_why("empty"))
    # phonenumbers would read letters as a vanity number (1-800-FLOWERS) or an extension; a
    # recipient typed with letters is far more often a mistake than either.
    if any(ch.isalpha() for ch in text):
        raise InvalidNumber("Number contains letters.", extra=_why("letters"))
    # phonenumbers skips leading junk ("📱 98..."); we would rather refuse it than guess.
    if not all(_is_number_char(ch) for ch in text):
        raise InvalidNumber(
            "Number contains characters other than digits, spaces, +, dashes, dots, slashes "
            "and brackets.",
            extra=_why("bad_characters"),
        )
    return text


def _is_number_char(ch: str) -> bool:
    return (
        ch.isdigit()
        or ch.isspace()
        or ch in _NUMBER_PUNCTUATION
        or unicodedata.category(ch) in _NUMBER_PUNCTUATION_CATEGORIES
    )


def _parse_any(text: str, default_region: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(text, default_region.upper() if default_region else None)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidNumber(
                "Number has no valid country code (write it as +<country code> <number>).",
                extra=_why("no_country_code"),
            ) from None
        if exc.error_type == NumberParseException.TOO_SHORT_NSN:
            raise InvalidNumber("Number is too short.", extra=_why("too_short")) from None
        if exc.error_type == NumberParseException.TOO_LONG:
            raise InvalidNumber("Number is too long.", extra=_why("too_long")) from None
        raise InvalidNumber("Text is not a phone number.", extra=_why("not_a_number")) from None
    if number.extension:
        raise InvalidNumber("Number has an extension; SMS cannot reach it.", extra=_why("ext"))
    region = phonenumbers.region_code_for_number(number)
    if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        raise InvalidNumber(
            f"Number is a global service number (+{number.country_code}), not supported.",
            extra=_why("non_geographic"),
        )
    if not phonenumbers.is_valid_number(number):
        reason = phonenumbers.is_possible_number_with_reason(number)
        if reason == phonenumbers.ValidationResult.TOO_SHORT:
            raise InvalidNumber("Number is too short.", extra=_why("too_short"))
        if reason == phonenumbers.ValidationResult.TOO_LONG:
            raise InvalidNumber("Number is too long.", extra=_why("too_long"))
        where = region or f"+{number.country_code}"
        raise InvalidNumber(f"Number is not a valid number for {where}.", extra=_why("invalid"))
    return number


def _why(reason: str) -> dict[str, object]:
    return {"reason": reason}


@cache  # keyed by 5-digit series (< 100k keys), never by number
def _indian_carrier(series: str) -> str | None:
    probe = phonenumbers.PhoneNumber(country_code=91, national_number=int(series.ljust(10, "0")))
    name = carrier.name_for_valid_number(probe, "en")
    if not name:
        return None
    return _INDIAN_BRANDS.get(name, name)


@lru_cache(maxsize=1)
def _circles() -> dict[str, str]:
    with _data_file("in_circles.csv") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


@lru_cache(maxsize=1)
def _indian_series() -> dict[str, str]:
    names = _circles()
    with _data_file("in_mobile_series.csv") as f:
        return {row["series"]: names[row["circle"]] for row in csv.DictReader(f)}


def _data_file(name: str) -> IO[str]:
    return resources.files("dakghar.core").joinpath("data", name).open(encoding="utf-8")


def indian_circles() -> dict[str, str]:
    """The 22 Indian licensed service areas (telecom circles): code → name."""
    return dict(_circles())
