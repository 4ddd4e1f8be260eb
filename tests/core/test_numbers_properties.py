"""Properties of the numbers module: no stray exceptions, one verdict on both parse paths, and
the shipped data tables agreeing with phonenumbers."""

from __future__ import annotations

import csv
import subprocess
import sys
from importlib import resources
from pathlib import Path

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.carrierdata import CARRIER_DATA

from dakghar.core.numbers import PhoneNumber, indian_circles, mask, parse_number
from dakghar.errors import CountryNotAllowed, InvalidNumber

PHONE_ALPHABET = "0123456789+-() ./#*٠١٢٣٤٥٦٧٨٩०१२३४५६७८९\t"


def _outcome(raw: str) -> PhoneNumber | str:
    try:
        return parse_number(raw)
    except (InvalidNumber, CountryNotAllowed) as exc:
        return str(exc.extra.get("reason", exc.code))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_raises_only_our_two_errors(raw: str) -> None:
    _outcome(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=PHONE_ALPHABET, max_size=30),
    st.sampled_from(["IN", "US", "GB", "AE", "SG", "BD", "", "ZZ"]),
)
def test_phone_like_text_parses_to_a_number_that_parses_back_to_itself(
    raw: str, default_region: str
) -> None:
    try:
        number = parse_number(raw, default_region=default_region, allowed_countries={"IN", "GB"})
    except (InvalidNumber, CountryNotAllowed):
        return
    assert parse_number(number.e164) == number
    assert number.e164 == f"+{number.country_code}{number.national}"
    assert mask(number.e164).endswith(number.e164[-4:])


def test_fast_and_full_parse_paths_agree_on_every_indian_series() -> None:
    # "+91 ..." with a space takes phonenumbers' full parser; "+91..." takes the fast path.
    for series in range(1000, 10000):
        for suffix in ("000000", "123456", "999999"):
            national = f"{series}{suffix}"
            assert _outcome(f"+91{national}") == _outcome(f"+91 {national}"), national


def test_indian_carrier_prefixes_are_at_most_five_national_digits() -> None:
    # The carrier lookup memoises by 5-digit series; a longer +91 prefix would break that.
    assert max(len(key) for key in CARRIER_DATA if key.startswith("91")) <= 2 + 5


def test_parsing_never_imports_the_100_mb_geocoder() -> None:
    code = (
        "import sys; from dakghar.core.numbers import parse_number; "
        "parse_number('+919599123456'); parse_number('+44 7400 123456'); "
        "print('phonenumbers.geocoder' in sys.modules)"
    )
    src = str(Path(__file__).parents[2] / "src")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={"PYTHONPATH": src},
    )
    assert result.stdout.strip() == "False"


def _rows(name: str) -> list[dict[str, str]]:
    data = resources.files("dakghar.core").joinpath("data", name)
    with data.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_series_row_names_a_known_circle_once() -> None:
    rows = _rows("in_mobile_series.csv")
    circles = indian_circles()
    assert all(row["circle"] in circles for row in rows)
    assert all(row["series"].isdigit() and len(row["series"]) in (4, 5) for row in rows)
    assert len({row["series"] for row in rows}) == len(rows)


def test_every_series_row_agrees_with_the_operator_phonenumbers_allots_it_to() -> None:
    brand = {"Bharti Airtel": "Airtel", "Bharti Hexacom": "Airtel"}
    for row in _rows("in_mobile_series.csv"):
        number = phonenumbers.parse(f"+91{row['series'].ljust(10, '0')}")
        allotted = phonenumbers.carrier.name_for_valid_number(number, "en")
        assert allotted == brand.get(row["allotted_to"], row["allotted_to"]), row
