"""Delivery receipts: recognise them, parse their text (SMPP 3.4 appendix B), and format them.

The appendix B text format is only "informative" and every SMSC bends it: keys in another case or
order, ``submit_date`` for ``submit date``, missing or extra fields, ``Text:`` capitalised, ids in
hex where the submit_sm_resp gave decimal. ``parse_receipt`` accepts all of that; when the
``receipted_message_id`` and ``message_state`` TLVs are present they win over the text.
The simulated carrier uses ``format_receipt``; the pipeline's DLR stage calls ``parse_receipt``.
Reference read for the vendor variants: aiosmpplib's receipt parser and Jasmin's DLR handling.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from dakghar.smpp import pdu as p
from dakghar.smpp.tlv import Tag


class ReceiptStat(Enum):
    """The normalised final (or intermediate) state a receipt reports."""

    DELIVRD = "DELIVRD"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    UNDELIV = "UNDELIV"
    ACCEPTD = "ACCEPTD"
    UNKNOWN = "UNKNOWN"
    REJECTD = "REJECTD"
    ENROUTE = "ENROUTE"

    @property
    def is_final(self) -> bool:
        """False only for ENROUTE: every other state ends the message's life at the SMSC."""
        return self is not ReceiptStat.ENROUTE

    @property
    def message_state(self) -> int:
        """The message_state TLV value (5.3.2.35) for this stat."""
        return _STATE_OF_STAT[self]


# message_state TLV values (SMPP 3.4 5.3.2.35).
MESSAGE_STATES: dict[int, ReceiptStat] = {
    1: ReceiptStat.ENROUTE,
    2: ReceiptStat.DELIVRD,
    3: ReceiptStat.EXPIRED,
    4: ReceiptStat.DELETED,
    5: ReceiptStat.UNDELIV,
    6: ReceiptStat.ACCEPTD,
    7: ReceiptStat.UNKNOWN,
    8: ReceiptStat.REJECTD,
}
_STATE_OF_STAT = {stat: state for state, stat in MESSAGE_STATES.items()}

_STAT_WORDS: dict[str, ReceiptStat] = {
    "DELIVRD": ReceiptStat.DELIVRD,
    "DELIVERED": ReceiptStat.DELIVRD,
    "DELIVER": ReceiptStat.DELIVRD,
    "EXPIRED": ReceiptStat.EXPIRED,
    "DELETED": ReceiptStat.DELETED,
    "UNDELIV": ReceiptStat.UNDELIV,
    "UNDELIVERABLE": ReceiptStat.UNDELIV,
    "UNDELIVERED": ReceiptStat.UNDELIV,
    "FAILED": ReceiptStat.UNDELIV,
    "ACCEPTD": ReceiptStat.ACCEPTD,
    "ACCEPTED": ReceiptStat.ACCEPTD,
    "UNKNOWN": ReceiptStat.UNKNOWN,
    "REJECTD": ReceiptStat.REJECTD,
    "REJECTED": ReceiptStat.REJECTD,
    "ENROUTE": ReceiptStat.ENROUTE,
    "EN_ROUTE": ReceiptStat.ENROUTE,
}

# esm_class bits 5..2 of a deliver_sm/data_sm (5.2.12) that mark a receipt or acknowledgement.
RECEIPT_TYPES = frozenset((0x04, 0x08, 0x10, 0x20))
_ESM_TYPE_MASK = 0x3C


@dataclass(slots=True, frozen=True)
class DeliveryReceipt:
    """A parsed delivery receipt; fields the SMSC left out are None."""

    id: str
    stat: ReceiptStat
    submitted: int | None = None
    delivered: int | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    err: str | None = None
    text: str | None = None
    network_error_code: bytes | None = None

    def matches(self, message_id: str) -> bool:
        """True if ``message_id`` (from a submit_sm_resp) names the same message as this receipt."""
        return bool(message_id_forms(self.id) & message_id_forms(message_id))


def message_id_forms(message_id: str) -> set[str]:
    """The spellings an SMSC may use for one id: as given, and decimal <-> hex conversions."""
    raw = message_id.strip().lower()
    forms = {raw, raw.lstrip("0") or "0"}
    if raw.isdigit() and len(raw) <= 20:
        forms.add(format(int(raw), "x"))
    if raw and len(raw) <= 16 and all(c in "0123456789abcdef" for c in raw):
        forms.add(str(int(raw, 16)))
    return forms


_KEY = re.compile(
    r"(?i)(?<![a-z0-9_])(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:\s?"
)


def parse_receipt(
    short_message: bytes | str, tlvs: Mapping[int, p.TlvValue] | None = None
) -> DeliveryReceipt | None:
    """The receipt in a deliver_sm body (and TLVs), or None if it carries none."""
    text = short_message.decode("latin-1") if isinstance(short_message, bytes) else short_message
    fields = _split_fields(text)
    tlvs = tlvs or {}
    tlv_id = tlvs.get(Tag.receipted_message_id)
    tlv_state = tlvs.get(Tag.message_state)
    message_id = tlv_id if isinstance(tlv_id, str) and tlv_id else fields.get("id")
    if isinstance(tlv_id, bytes) and tlv_id:
        message_id = tlv_id.rstrip(b"\x00").decode("latin-1")
    if isinstance(tlv_state, int) and tlv_state in MESSAGE_STATES:
        stat: ReceiptStat | None = MESSAGE_STATES[tlv_state]
    else:
        stat = _stat(fields.get("stat"))
    if message_id is None or (stat is None and "stat" not in fields and not tlvs):
        return None
    network_error = tlvs.get(Tag.network_error_code)
    return DeliveryReceipt(
        id=message_id,
        stat=stat or ReceiptStat.UNKNOWN,
        submitted=_count(fields.get("sub")),
        delivered=_count(fields.get("dlvrd")),
        submit_date=_date(fields.get("submitdate")),
        done_date=_date(fields.get("donedate")),
        err=fields.get("err") or None,
        text=fields.get("text"),
        network_error_code=network_error if isinstance(network_error, bytes) else None,
    )


# Appendix B's layout exactly, as most SMSCs (and the simulator) write it: one regex match
# instead of a search for every key. Values hold no colon or space, so none can hide a key, and
# whatever this does not match goes to the general parser; tests/smpp/test_dlr.py checks that
# both give the same fields on generated receipts.
_CANONICAL = re.compile(
    r"id:([^\s:]*) sub:([^\s:]*) dlvrd:([^\s:]*) submit date:([^\s:]*) "
    r"done date:([^\s:]*) stat:([^\s:]*) err:([^\s:]*)(?: text:\s?(.*))?\Z",
    re.DOTALL,
)
_CANONICAL_KEYS = ("id", "sub", "dlvrd", "submitdate", "donedate", "stat", "err")


def _split_fields(text: str) -> dict[str, str]:
    match = _CANONICAL.match(text)
    if match is None:
        return _search_fields(text)
    fields = dict(zip(_CANONICAL_KEYS, match.groups(), strict=False))
    if match.group(8) is not None:
        fields["text"] = match.group(8)
    return fields


def _search_fields(text: str) -> dict[str, str]:
    """Any layout: each known key wherever it stands, in any case, with or without spaces."""
    matches = list(_KEY.finditer(text))
    fields: dict[str, str] = {}
    for index, match in enumerate(matches):
        key = match.group(1).lower().replace(" ", "").replace("_", "")
        if key in fields:
            continue  # a second "id:" is more likely inside the text than a real field
        if key == "text" and "stat" in fields:
            fields["text"] = text[match.end() :]  # text runs to the end, whatever it contains
            break
        stop = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = text[match.end() : stop].strip()
        fields[key] = value if key == "text" else value.split(" ")[0] if value else ""
    return fields


def _stat(word: str | None) -> ReceiptStat | None:
    if not word:
        return None
    word = word.strip().upper()
    if word.isdigit():
        return MESSAGE_STATES.get(int(word), ReceiptStat.UNKNOWN)
    return _STAT_WORDS.get(word, ReceiptStat.UNKNOWN)


def _count(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@functools.lru_cache(maxsize=1024)
def _date(value: str | None) -> datetime | None:
    """YYMMDDhhmm or YYMMDDhhmmss (appendix B), or a 14-digit YYYYMMDDhhmmss; None otherwise.

    Sliced by hand: ``datetime.strptime`` cost more than the rest of a receipt's parsing. Kept
    for the last 1,024 values (datetimes do not change): a receipt's two dates, and the
    receipts of one minute, mostly share them.
    """
    if not value:
        return None
    digits = value if value.isdigit() else "".join(c for c in value if c.isdigit())
    n = len(digits)
    if n not in (10, 12, 14):
        return None
    if n == 14:
        year, rest = int(digits[:4]), digits[4:]
    else:
        # strptime's %y: 69-99 are 1969-1999, 00-68 are 2000-2068
        yy = int(digits[:2])
        year, rest = (1900 + yy if yy >= 69 else 2000 + yy), digits[2:]
    try:
        return datetime(year, int(rest[0:2]), int(rest[2:4]), int(rest[4:6]), int(rest[6:8]),
                        int(rest[8:10]) if len(rest) >= 10 else 0)  # fmt: skip
    except ValueError:
        return None


def is_receipt(pdu: p.Pdu) -> bool:
    """True if a deliver_sm/data_sm carries a delivery receipt or acknowledgement, not an MO."""
    if not isinstance(pdu, p.DeliverSm | p.DataSm):
        return False
    if pdu.esm_class & _ESM_TYPE_MASK in RECEIPT_TYPES:
        return True
    # Some SMSCs leave esm_class at 0 but still send the receipt TLVs.
    return Tag.receipted_message_id in pdu.tlvs and Tag.message_state in pdu.tlvs


def format_receipt(
    message_id: str,
    stat: ReceiptStat,
    submit_date: datetime,
    done_date: datetime,
    *,
    submitted: int = 1,
    delivered: int | None = None,
    err: str = "000",
    text: str = "",
) -> str:
    """The appendix B receipt text, as most SMSCs send it."""
    if delivered is None:
        delivered = submitted if stat is ReceiptStat.DELIVRD else 0
    return (
        f"id:{message_id} sub:{submitted:03d} dlvrd:{delivered:03d} "
        f"submit date:{submit_date:%y%m%d%H%M} done date:{done_date:%y%m%d%H%M} "
        f"stat:{stat.value} err:{err} text:{text[:20]}"
    )
