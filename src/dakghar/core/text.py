"""Message text: GSM 03.38 / UCS-2 encoding choice, segment counting and splitting.

Pure functions, no I/O. The API uses ``prepare_body``/``count_segments`` to price and validate a
body (``body_empty``/``body_too_long`` are raised by the caller); the SMPP codec and HTTP provider
connectors use ``gsm7_encode``/``gsm7_decode``/``gsm7_pack`` and ``split_segments`` to build the
parts of a concatenated message. Tables follow 3GPP TS 23.038 §6.2.1 (default alphabet) and
§6.2.1.1 (default extension table); docs/encoding.md explains the rules with examples.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SMART_REPLACEMENTS",
    "Encoding",
    "SegmentInfo",
    "count_segments",
    "gsm7_decode",
    "gsm7_encode",
    "gsm7_pack",
    "gsm7_unpack",
    "is_gsm7",
    "prepare_body",
    "smart_normalize",
    "split_segments",
]


class Encoding(enum.Enum):
    """Data coding of a message body, spelled as the API spells it."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


# TS 23.038 §6.2.1: index = septet value. 0x1B is the escape to the extension table, never a
# character, so it holds a placeholder that no text character can match.
GSM7_BASIC: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# TS 23.038 §6.2.1.1: characters reached as ESC + code; each costs two septets.
GSM7_EXTENSION: Mapping[str, int] = MappingProxyType(
    {
        "\f": 0x0A,
        "^": 0x14,
        "{": 0x28,
        "}": 0x29,
        "\\": 0x2F,
        "[": 0x3C,
        "~": 0x3D,
        "]": 0x3E,
        "|": 0x40,
        "€": 0x65,
    }
)
_ESC = 0x1B
_EXTENSION_CHARS = tuple(GSM7_EXTENSION)

_BASIC_CODE: dict[str, int] = {ch: code for code, ch in enumerate(GSM7_BASIC) if code != _ESC}
_EXT_CHAR: dict[int, str] = {code: ch for ch, code in GSM7_EXTENSION.items()}
_GSM_CHARS: frozenset[str] = frozenset(_BASIC_CODE) | frozenset(GSM7_EXTENSION)

# Text -> septet string (one str char per septet). Every ASCII code point is mapped explicitly so
# that ASCII characters outside the alphabet (backtick, TAB, other C0 controls, DEL) become "\x80"
# and make the result non-ASCII; non-ASCII characters outside the alphabet pass through unchanged
# and do the same. One C-level translate therefore both encodes and validates.
_TO_SEPTETS: dict[int, str] = {cp: "\x80" for cp in range(128)}
_TO_SEPTETS.update({ord(ch): chr(code) for ch, code in _BASIC_CODE.items()})
_TO_SEPTETS.update({ord(ch): f"\x1b{chr(code)}" for ch, code in GSM7_EXTENSION.items()})

# ASCII characters that are either outside the alphabet or cost two septets: a pure-ASCII body
# without any of them is exactly one septet per character (the common case, kept fast). Deleting
# them with bytes.translate measured ~2x faster than a regex character-class search.
_ASCII_NOT_ONE_SEPTET: bytes = bytes(
    cp for cp in range(128) if chr(cp) not in _BASIC_CODE or chr(cp) in GSM7_EXTENSION
)


def _is_one_septet_ascii(text: str) -> bool:
    """True for pure-ASCII text whose every character is a single GSM septet."""
    if not text.isascii():
        return False
    raw = text.encode("ascii")
    return len(raw.translate(None, _ASCII_NOT_ONE_SEPTET)) == len(raw)


# The one home of segment sizes: billing (``count_segments``) and the SMPP wire
# (``smpp.concat``) both derive theirs from ``capacity``.
SMS_OCTETS = 140  # user data of one SMS (3GPP TS 23.040)
UDH_CONCAT_8 = 6  # UDH with the 8-bit reference concatenation element (also what SAR yields)
UDH_CONCAT_16 = 7  # with the 16-bit reference element


def capacity(encoding: Encoding, udh_octets: int = 0) -> int:
    """Units one SMS holds beside a user data header of ``udh_octets``: septets for GSM-7
    (160, 153 with an 8-bit concatenation UDH, 152 with a 16-bit one), UTF-16 units for UCS-2
    (70, 67, 66)."""
    if encoding is Encoding.GSM7:
        return (SMS_OCTETS - udh_octets) * 8 // 7 if udh_octets else SMS_OCTETS * 8 // 7
    return (SMS_OCTETS - udh_octets) // 2


_SINGLE = {e: capacity(e) for e in Encoding}
_MULTI = {e: capacity(e, UDH_CONCAT_8) for e in Encoding}
_GSM_SINGLE, _GSM_MULTI = _SINGLE[Encoding.GSM7], _MULTI[Encoding.GSM7]
_UCS2_SINGLE, _UCS2_MULTI = _SINGLE[Encoding.UCS2], _MULTI[Encoding.UCS2]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a body is encoded and how many SMS segments it takes."""

    encoding: Encoding
    segments: int
    units: int
    """Septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2."""
    unit_limit_single: int
    unit_limit_multi: int
    characters: int
    """Length of the text as a Python str (code points)."""
    remaining_in_segment: int
    """Units still free in the last segment (the whole single segment for empty text)."""


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 default alphabet or its extension table."""
    if _is_one_septet_ascii(text):
        return True
    return _GSM_CHARS.issuperset(text)


def _shape(text: str) -> str | None:
    """``text`` with an ESC marker before each extension character, or None if not GSM-7.

    One str char per septet, which is all that segment cutting needs, and ~10x cheaper than the
    full translation for non-ASCII or long text (str.translate leaves its fast path as soon as a
    character maps to two).
    """
    if not is_gsm7(text):
        return None
    for ch in _EXTENSION_CHARS:
        if ch in text:
            text = text.replace(ch, "\x1b" + ch)
    return text


def _septets(text: str) -> str | None:
    """The septet string of ``text`` (one char per septet), or None if it is not GSM-7."""
    septets = text.translate(_TO_SEPTETS)
    return septets if septets.isascii() else None


def gsm7_encode(text: str) -> bytes:
    """Unpacked septets, one per octet; extension characters become ESC (0x1B) + code."""
    septets = _septets(text)
    if septets is None:
        bad = next(ch for ch in text if ch not in _GSM_CHARS)
        raise ValueError(f"character {bad!r} (U+{ord(bad):04X}) is not in the GSM 03.38 alphabet")
    return septets.encode("ascii")


def gsm7_decode(data: bytes) -> str:
    """Decode unpacked septets; tolerant of junk as a handset would be (TS 23.038 §6.2.1.1)."""
    if _ESC not in data:
        return "".join(GSM7_BASIC[b] if b < 0x80 else "?" for b in data)
    out: list[str] = []
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b != _ESC:
            out.append(GSM7_BASIC[b] if b < 0x80 else "?")
            i += 1
            continue
        if i + 1 == n:  # a lone ESC at the end: nothing to escape, drop it
            break
        code = data[i + 1]
        if code in _EXT_CHAR:
            out.append(_EXT_CHAR[code])
        elif code == _ESC:
            # Reserved for a further extension table: "display a space" (§6.2.1.1 note 1).
            out.append(" ")
        elif code < 0x80:
            # Unknown extension code: "display the character of the default alphabet" (§6.2.1.1).
            out.append(GSM7_BASIC[code])
        else:
            out.append("?")
        i += 2
    return "".join(out)


def gsm7_pack(septets: bytes, *, fill_bits: int = 0) -> bytes:
    """Pack septets 8-into-7 octets, LSB first (TS 23.038 §6.1.2.1).

    ``fill_bits`` (0-6) zero bits come first, to align the text to a septet boundary after a UDH.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    acc = 0
    for i, s in enumerate(septets):
        if s > 0x7F:
            raise ValueError(f"septet {s:#x} at {i} does not fit in 7 bits")
        acc |= s << (7 * i)
    nbits = 7 * len(septets) + fill_bits
    return (acc << fill_bits).to_bytes((nbits + 7) // 8, "little")


def gsm7_unpack(data: bytes, count: int, *, fill_bits: int = 0) -> bytes:
    """Unpack ``count`` septets from packed ``data`` (the inverse of ``gsm7_pack``)."""
    if count < 0 or 7 * count + fill_bits > 8 * len(data):
        raise ValueError(f"{len(data)} octets cannot hold {count} septets")
    acc = int.from_bytes(data, "little") >> fill_bits
    return bytes((acc >> (7 * i)) & 0x7F for i in range(count))


def _gsm_cuts(shape: str, per_part: int = _GSM_MULTI) -> list[int]:
    """Septet offsets where segments end; an ESC + code pair is never split."""
    n = len(shape)
    if n <= _GSM_SINGLE:
        return [n]
    cuts: list[int] = []
    start = 0
    while start < n:
        end = start + per_part
        # ESC never stands for a character, so a trailing ESC is the first half of a pair: move
        # the whole pair to the next segment.
        if end < n and shape[end - 1] == "\x1b":
            end -= 1
        end = min(end, n)
        cuts.append(end)
        start = end
    return cuts


def _ucs2_cuts(utf16: bytes, per_part: int = _UCS2_MULTI) -> list[int]:
    """UTF-16 unit offsets where segments end; a surrogate pair is never split."""
    n = len(utf16) // 2
    if n <= _UCS2_SINGLE:
        return [n]
    cuts: list[int] = []
    start = 0
    while start < n:
        end = start + per_part
        # Little-endian: the high byte of unit k is at 2k+1; D8..DB is a high (leading) surrogate.
        if end < n and 0xD8 <= utf16[2 * end - 1] <= 0xDB:
            end -= 1
        end = min(end, n)
        cuts.append(end)
        start = end
    return cuts


# Building a frozen dataclass costs more than the rest of a fast-path count, and the instances
# are immutable, so they are shared. Bounded: cleared when full (bodies are short in practice).
_INFO_MEMO: dict[tuple[bool, int, int, int, int], SegmentInfo] = {}
_INFO_MEMO_SIZE = 65536


def _make_info(
    encoding: Encoding, segments: int, units: int, characters: int, remaining: int
) -> SegmentInfo:
    # Keyed on a bool, not the Enum: Enum.__hash__ is Python code and showed up in profiles.
    key = (encoding is Encoding.GSM7, segments, units, characters, remaining)
    info = _INFO_MEMO.get(key)
    if info is None:
        if len(_INFO_MEMO) >= _INFO_MEMO_SIZE:
            _INFO_MEMO.clear()
        info = SegmentInfo(
            encoding, segments, units, _SINGLE[encoding], _MULTI[encoding], characters, remaining
        )
        _INFO_MEMO[key] = info
    return info


def _info(encoding: Encoding, cuts: list[int], characters: int) -> SegmentInfo:
    units = cuts[-1]
    segments = len(cuts)
    if segments == 1:
        remaining = _SINGLE[encoding] - units
    else:
        remaining = _MULTI[encoding] - (units - cuts[-2])
    return _make_info(encoding, segments, units, characters, remaining)


_EMPTY = _make_info(Encoding.GSM7, 0, 0, 0, _GSM_SINGLE)


def _count(text: str, shape: str | None) -> SegmentInfo:
    """Count ``text`` given its GSM shape (None: not GSM-7, so UCS-2)."""
    n = len(text)
    if n == 0:
        return _EMPTY
    if shape is not None:
        return _info(Encoding.GSM7, _gsm_cuts(shape), n)
    utf16 = text.encode("utf-16-le", "surrogatepass")
    return _info(Encoding.UCS2, _ucs2_cuts(utf16), n)


def _one_septet_info(n: int) -> SegmentInfo:
    """Info for n characters of one septet each: plain division is exact."""
    if n <= _GSM_SINGLE:
        info = _make_info(Encoding.GSM7, 1 if n else 0, n, n, _GSM_SINGLE - n)
    else:
        segments = -(-n // _GSM_MULTI)
        info = _make_info(Encoding.GSM7, segments, n, n, _GSM_MULTI * segments - n)
    if n <= _ONE_SEPTET_MEMO_LENGTH:
        _ONE_SEPTET_INFO[n] = info
    return info


# The common case (plain ASCII) depends on the length alone: one int-keyed lookup.
_ONE_SEPTET_INFO: dict[int, SegmentInfo] = {}
_ONE_SEPTET_MEMO_LENGTH = 4096


def _count_text(text: str) -> SegmentInfo:
    if text.isascii():
        raw = text.encode("ascii")
        if len(raw.translate(None, _ASCII_NOT_ONE_SEPTET)) == len(raw):
            return _ONE_SEPTET_INFO.get(len(raw)) or _one_septet_info(len(raw))
    return _count(text, _shape(text))


def count_segments(text: str, *, smart_encoding: bool = False) -> SegmentInfo:
    """Encoding and segment count of ``text`` (of its smart-normalised form, if that is GSM-7)."""
    if smart_encoding:
        return prepare_body(text, smart_encoding=True)[1]
    return _count_text(text)


def split_segments(text: str, encoding: Encoding) -> list[str]:
    """The text of each segment, packed greedily exactly as ``count_segments`` counts them.

    Raises ``ValueError`` if ``encoding`` is GSM-7 and the text is not.
    """
    if not text:
        return []
    if encoding is Encoding.GSM7:
        shape = _shape(text)
        if shape is None:
            gsm7_encode(text)  # raises with the offending character
            raise AssertionError("unreachable")
        parts: list[str] = []
        char_pos = 0
        start = 0
        for end in _gsm_cuts(shape):
            # Characters in this segment = septets minus the ESC prefixes among them.
            nchars = (end - start) - shape.count("\x1b", start, end)
            parts.append(text[char_pos : char_pos + nchars])
            char_pos += nchars
            start = end
        return parts
    utf16 = text.encode("utf-16-le", "surrogatepass")
    start = 0
    parts = []
    for end in _ucs2_cuts(utf16):
        parts.append(utf16[2 * start : 2 * end].decode("utf-16-le", "surrogatepass"))
        start = end
    return parts


# Smart encoding: look-alikes that would force UCS-2 although a GSM character means the same.
# Accented letters outside the alphabet (á, ç, ê, ...) are deliberately NOT stripped: that would
# change spelling. docs/encoding.md lists this table for users.
SMART_REPLACEMENTS: Mapping[str, str] = MappingProxyType(
    {
        # quotes: ‘ ’ ‚ ‛ ′ ‵ ‹ ›  and  “ ” „ ‟ ″ ‶ « »
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u2039\u203a", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb", '"'),
        # hyphen, non-breaking hyphen, figure dash, – en dash, — em dash, ― bar, − minus sign
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        # bullets: • ‣ ⁃ ∙ ◦
        **dict.fromkeys("\u2022\u2023\u2043\u2219\u25e6", "-"),
        "\u2026": "...",  # … ellipsis
        "\u2044": "/",  # ⁄ fraction slash
        # TAB, no-break, en quad .. hair, narrow no-break, medium math and ideographic spaces
        **dict.fromkeys("\t\u00a0\u202f\u205f\u3000", " "),
        **{chr(cp): " " for cp in range(0x2000, 0x200B)},
        "\u2028": "\n",  # line separator
        "\u2029": "\n",  # paragraph separator
        # Invisible: soft hyphen, zero width space/non-joiner/joiner, word joiner, BOM. ZWJ/ZWNJ
        # matter inside Indic scripts and emoji, but such text needs UCS-2 and is then sent as is.
        **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
        # typographic ligatures ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ, and Œ œ
        **{"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"},
        **{"\ufb05": "st", "\ufb06": "st", "\u0152": "OE", "\u0153": "oe"},
    }
)
_SMART_CHARS: frozenset[str] = frozenset(SMART_REPLACEMENTS)


def smart_normalize(text: str) -> str:
    """Replace look-alikes (curly quotes, dashes, odd spaces, ...) with GSM equivalents.

    Also composes decomposed accents (NFC), so "e" + U+0301 becomes the GSM "é".
    """
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    # Replacing only the characters present measured ~5x faster than str.translate with a dict,
    # which looks up every character of a non-ASCII string.
    for ch in _SMART_CHARS.intersection(text):
        text = text.replace(ch, SMART_REPLACEMENTS[ch])
    return text


def prepare_body(text: str, smart_encoding: bool) -> tuple[str, SegmentInfo]:
    """The text that will actually be sent, with its segment info.

    With smart encoding, the normalised text is used only if it is GSM-7; otherwise the original
    text goes out as UCS-2 unchanged (a Hindi message is never mangled).
    """
    if not smart_encoding:
        return text, _count_text(text)
    shape = _shape(text)
    if shape is not None:
        return text, _count(text, shape)
    normalized = smart_normalize(text)
    if normalized != text:
        shape = _shape(normalized)
        if shape is not None:
            return normalized, _count(normalized, shape)
    return text, _count(text, None)
