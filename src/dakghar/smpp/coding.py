"""data_coding values (SMPP 3.4 5.2.19) and the text <-> short_message bytes conversion for each.

GSM 03.38 goes on the SMPP wire as unpacked septets, one per octet, with ESC (0x1B) before an
extension-table character; the tables live in ``dakghar.core.text`` and are not repeated here.
``concat`` uses these to split and reassemble long messages; connectors use them to build bodies.
"""

from __future__ import annotations

from enum import IntEnum

from dakghar.core.text import gsm7_decode, gsm7_encode


class DataCoding(IntEnum):
    SMSC_DEFAULT = 0  # treated as GSM 03.38 (what Indian and most other SMSCs mean by it)
    IA5 = 1  # IA5 / ASCII
    BINARY_2 = 2  # octet unspecified (8-bit binary)
    LATIN1 = 3
    BINARY = 4  # octet unspecified (8-bit binary)
    UCS2 = 8


GSM7 = DataCoding.SMSC_DEFAULT
_BINARY = frozenset((DataCoding.BINARY, DataCoding.BINARY_2))


def encode_text(text: str, data_coding: int) -> bytes:
    """The short_message octets for ``text``; ``ValueError`` if the coding cannot represent it."""
    if data_coding == DataCoding.SMSC_DEFAULT:
        return gsm7_encode(text)
    if data_coding == DataCoding.UCS2:
        return text.encode("utf-16-be")  # astral characters become surrogate pairs, as UCS-2 needs
    if data_coding == DataCoding.IA5:
        return text.encode("ascii")
    if data_coding == DataCoding.LATIN1:
        return text.encode("latin-1")
    raise ValueError(f"data_coding {data_coding} is not a text coding")


def decode_text(data: bytes, data_coding: int) -> str:
    """The text in ``data``; tolerant (replacement characters), since it comes from the network."""
    if data_coding == DataCoding.SMSC_DEFAULT:
        return gsm7_decode(data)
    if data_coding == DataCoding.UCS2:
        return data.decode("utf-16-be", "replace")
    if data_coding == DataCoding.IA5:
        return data.decode("ascii", "replace")
    # LATIN1, binary and codings we do not know: Latin-1 keeps every octet recoverable.
    return data.decode("latin-1")


def is_binary(data_coding: int) -> bool:
    """True for the 8-bit binary codings, whose payload is not text."""
    return data_coding in _BINARY
