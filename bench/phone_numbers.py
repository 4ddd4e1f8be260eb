"""Benchmark of dakghar.core.numbers: parses per second and lookups per second.

Run: ``PYTHONPATH=src python bench/phone_numbers.py``. Prints the median of 5 runs for each case:
- the E.164 fast path (``+91`` and ten digits) against phonenumbers' full parse of the same input;
- messy forms (spaces, dashes, trunk 0, 0091, tel:, Devanagari digits, other countries);
- the Indian carrier (memoised per 5-digit series) and circle lookups, and phonenumbers'
  uncached ``carrier.name_for_number`` for reference.
Each case runs on a few thousand distinct valid numbers, so no per-number cache could help.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence

import phonenumbers
from phonenumbers import PhoneNumberFormat, carrier

from dakghar.core.numbers import _indian_carrier, circle_for, parse_number

RUNS = 5
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


def _indian_mobiles(count: int, rng: random.Random) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        national = f"{rng.randint(6000, 9999)}{rng.randint(0, 999_999):06d}"
        number = phonenumbers.PhoneNumber(country_code=91, national_number=int(national))
        if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE:
            found.append(national)
    return found


def _messy(nationals: Sequence[str], rng: random.Random) -> list[str]:
    forms: list[Callable[[str], str]] = [
        lambda n: f"+91 {n[:5]} {n[5:]}",
        lambda n: f"0{n[:5]}-{n[5:]}",
        lambda n: n,
        lambda n: f"0091 {n}",
        lambda n: f"(+91) {n[:5]} {n[5:]}",
        lambda n: f"tel:+91-{n[:5]}-{n[5:]}",
        lambda n: f"+91 {n}".translate(DEVANAGARI),
        lambda n: f"  +91{n}\n",
    ]
    others = ["+1 415 555 2671", "+44 7400 123456", "+971 50 123 4567", "+65 8123 4567"]
    out = [rng.choice(forms)(n) for n in nationals]
    out += [rng.choice(others) for _ in range(len(nationals) // 10)]
    rng.shuffle(out)
    return out


def _rate(fn: Callable[[str], object], inputs: Sequence[str]) -> float:
    rates = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for item in inputs:
            fn(item)
        rates.append(len(inputs) / (time.perf_counter() - start))
    return statistics.median(rates)


def _full_parse(raw: str) -> object:
    number = phonenumbers.parse(raw, "IN")
    phonenumbers.is_valid_number(number)
    phonenumbers.number_type(number)
    carrier.name_for_valid_number(number, "en")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _uncached_carrier(e164: str) -> object:
    return carrier.name_for_number(phonenumbers.PhoneNumber(91, int(e164[3:])), "en")


def main() -> None:
    rng = random.Random(20261125)
    nationals = _indian_mobiles(5000, rng)
    e164 = [f"+91{n}" for n in nationals]
    messy = _messy(nationals, rng)
    parse_number(e164[0])  # load the data tables outside the timings

    print(f"dakghar.core.numbers, phonenumbers {phonenumbers.__version__}; median of {RUNS} runs")
    print(f"{len(e164)} distinct valid Indian mobiles; {len(messy)} messy inputs")
    rows = [
        ("parse_number, E.164 fast path", _rate(parse_number, e164)),
        ("phonenumbers full parse+valid+type+carrier, E.164", _rate(_full_parse, e164)),
        ("parse_number, messy forms (10% other countries)", _rate(parse_number, messy)),
        (
            "carrier lookup, memo by 5-digit series",
            _rate(lambda n: _indian_carrier(n[:5]), nationals),
        ),
        ("carrier.name_for_number (phonenumbers, uncached)", _rate(_uncached_carrier, e164)),
        ("circle_for (series table)", _rate(circle_for, nationals)),
    ]
    for name, rate in rows:
        print(f"  {name:<52} {rate:>12,.0f} /s")


if __name__ == "__main__":
    main()
