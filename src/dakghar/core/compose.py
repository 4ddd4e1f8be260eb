"""Composing a message: everything decided about it before it is written (pure, no I/O).

Given what the application asked for and the account's settings, this validates the number
(``core.numbers``), the sender and the body, picks the encoding and counts segments
(``core.text``), and prices it. The accept step (``pipeline.accept``) writes the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dakghar.core.numbers import PhoneNumber, parse_number
from dakghar.core.text import Encoding, prepare_body
from dakghar.errors import BodyEmpty, BodyTooLong, InvalidSender

# Alphanumeric sender IDs are at most 11 characters (GSM 03.40 address field); Indian DLT headers
# are 6. Numeric senders (long codes, short codes) are up to 15 digits with an optional '+'.
_ALNUM_SENDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .\-]{1,10}")
_NUMERIC_SENDER = re.compile(r"\+?[0-9]{3,15}")


@dataclass(frozen=True, slots=True)
class Composed:
    """A validated, encoded and priced message."""

    number: PhoneNumber
    sender: str
    text: str
    encoding: Encoding
    segments: int
    price_milli: int


def check_sender(sender: str | None) -> str:
    """A well-formed sender ID, or :class:`InvalidSender` (also when there is none at all:
    carriers would get an empty ``source_addr``)."""
    if not sender:
        raise InvalidSender(
            "no sender: give 'sender', or set the account's default sender "
            "('dakghar accounts create NAME --sender ID')"
        )
    if _NUMERIC_SENDER.fullmatch(sender) or (
        _ALNUM_SENDER.fullmatch(sender) and not sender.isdigit()
    ):
        return sender
    raise InvalidSender(
        f"sender {sender!r} is not a valid sender ID: use 2-11 letters/digits, "
        "or a numeric sender of 3-15 digits"
    )


def compose(
    *,
    to: str,
    body: str,
    sender: str | None,
    default_region: str,
    allowed_countries: frozenset[str] | None,
    segment_limit: int,
    price_milli_per_segment: int,
    smart_encoding: bool,
    charge: bool,
) -> Composed:
    """Validate and price one message; raises the matching :class:`DakgharError`."""
    number = parse_number(to, default_region=default_region, allowed_countries=allowed_countries)
    if not body or not body.strip():
        raise BodyEmpty("body is empty")
    text, info = prepare_body(body, smart_encoding)
    if info.segments > segment_limit:
        raise BodyTooLong(
            f"body needs {info.segments} segments ({info.encoding.value}); "
            f"the account's limit is {segment_limit}"
        )
    return Composed(
        number=number,
        sender=check_sender(sender),
        text=text,
        encoding=info.encoding,
        segments=info.segments,
        price_milli=info.segments * price_milli_per_segment if charge else 0,
    )
