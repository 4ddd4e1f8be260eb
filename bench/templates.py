"""DLT template matching: how many bodies per second are checked against 5,000 templates.

Builds 5,000 templates ("Dear {#var#}, " then 8-20 words drawn from a vocabulary of only 45,
with one to three more ``{#var#}`` placeholders: harder than real ones, which vary more),
compiles them with ``dakghar.compliance.templates.TemplateIndex`` (one alternation regex per
header) and times ``match`` on bodies made from random templates with filled variables, plus
bodies that match nothing. Two layouts: every template under one header (the worst case: one
regex of 5,000 branches) and the templates spread over 50 headers (100 each, a large account).

    python bench/templates.py [--templates 5000] [--bodies 20000]
"""

from __future__ import annotations

import argparse
import random
import time

from dakghar.compliance.templates import VAR, Template, TemplateIndex

WORDS = (
    "your",
    "order",
    "account",
    "payment",
    "due",
    "balance",
    "credited",
    "debited",
    "ref",
    "delivery",
    "scheduled",
    "today",
    "offer",
    "flat",
    "off",
    "cards",
    "loan",
    "approved",
    "policy",
    "renewal",
    "visit",
    "branch",
    "call",
    "us",
    "ticket",
    "booked",
    "seat",
    "confirmed",
    "appointment",
    "reminder",
    "doctor",
    "class",
    "fees",
    "school",
    "bill",
    "amount",
    "rupees",
)


def make_templates(count: int, headers: int, rng: random.Random) -> list[Template]:
    """``count`` distinct templates over ``headers`` headers."""
    out = []
    for i in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randrange(8, 20))]
        for _ in range(rng.randrange(1, 4)):
            words.insert(rng.randrange(len(words) + 1), VAR)
        text = "Dear {#var#}, " + " ".join(words) + ". -ACME"  # a common opening, few words
        out.append(Template(f"1107{i:015d}", f"HDR{i % headers:03d}", "service", text))
    return out


def fill(template: Template, rng: random.Random) -> str:
    """A body of ``template`` with each variable filled with up to 30 characters."""
    parts = template.text.split(VAR)
    values = [str(rng.randrange(10 ** rng.randrange(1, 12))) for _ in parts[1:]]
    return parts[0] + "".join(v + p for v, p in zip(values, parts[1:], strict=True))


def run(count: int, headers: int, bodies: int, seed: int) -> None:
    rng = random.Random(seed)
    templates = make_templates(count, headers, rng)
    t0 = time.perf_counter()
    index = TemplateIndex(templates)
    built = time.perf_counter() - t0
    cases: list[tuple[str, str, str | None]] = []
    for i in range(bodies):
        t = rng.choice(templates)
        if i % 4 == 3:  # a body no template allows
            cases.append((t.header, fill(t, rng) + " extra words", None))
        else:
            cases.append((t.header, fill(t, rng), t.id))
    t0 = time.perf_counter()
    found = [index.match(h, body) for h, body, _ in cases]
    took = time.perf_counter() - t0
    right = sum((m.id if m else None) == want for m, (_, _, want) in zip(found, cases, strict=True))
    print(f"{count:,} templates over {headers} header(s): compiled in {built:.2f} s; "
          f"{bodies:,} bodies in {took:.2f} s = {bodies / took:,.0f} matches/s "
          f"({took / bodies * 1e6:.0f} us each), {right:,}/{bodies:,} answered right")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--templates", type=int, default=5000)
    ap.add_argument("--bodies", type=int, default=20000)
    args = ap.parse_args()
    run(args.templates, 1, args.bodies, seed=1)
    run(args.templates, 50, args.bodies, seed=2)


if __name__ == "__main__":
    main()
