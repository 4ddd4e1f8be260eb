"""Long messages over SMPP: split a payload into parts, read part headers, reassemble inbound parts.

Three ways to send a long message (SMPP 3.4 5.3.2.22-24, 5.3.2.32; 3GPP TS 23.040 9.2.3.24.1):
a UDH in each short_message (IEI 0x00 with an 8-bit reference or IEI 0x08 with a 16-bit one,
esm_class UDHI 0x40), the SAR TLVs (the SMSC builds the UDH), or one ``message_payload`` TLV.
Cuts never fall inside a GSM escape sequence or a UCS-2 surrogate pair. The ``Reassembler`` is
pure: memory is bounded by ``max_groups`` and expiry uses the ``now`` its caller passes in.
Text conversion lives in ``coding``; the client connector and the simulator call these.
Reference read: aiosmpplib's UDH/SAR helpers and smpplib's ``gsm.make_parts``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TypeVar

from dakghar.core.text import (
    SMS_OCTETS,
    UDH_CONCAT_8,
    UDH_CONCAT_16,
    Encoding,
    capacity,
)
from dakghar.smpp import pdu as p
from dakghar.smpp.coding import DataCoding
from dakghar.smpp.tlv import Tag

UDHI = 0x40  # esm_class bit: short_message starts with a user data header
IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08
_ESC = 0x1B


class Method(Enum):
    UDH8 = "udh8"
    UDH16 = "udh16"
    SAR = "sar"
    PAYLOAD = "payload"


@dataclass(slots=True, frozen=True)
class ConcatInfo:
    """Where one part sits in its long message."""

    ref: int
    total: int
    seq: int


@dataclass(slots=True)
class Part:
    """One short_message to send, with the esm_class bits and TLVs it needs."""

    short_message: bytes
    esm_class: int = 0
    tlvs: dict[int, p.TlvValue] = field(default_factory=dict)


# Octets of the UDH each method puts in (or, for SAR, has the SMSC put in) every part.
_UDH_OCTETS = {Method.UDH8: UDH_CONCAT_8, Method.UDH16: UDH_CONCAT_16, Method.SAR: UDH_CONCAT_8}


def _limits(data_coding: int, method: Method) -> tuple[int, int]:
    """(single-message capacity, per-part capacity) in short_message octets.

    Derived from ``core.text.capacity``, the same sizes billing counts with, so a message goes
    out in as many parts as ``count_segments`` says for that header size.
    """
    udh = _UDH_OCTETS.get(method, 0)
    if data_coding == DataCoding.SMSC_DEFAULT:  # unpacked septets: the SMSC packs 8 into 7
        return capacity(Encoding.GSM7), capacity(Encoding.GSM7, udh)
    if data_coding == DataCoding.UCS2:  # two octets a unit
        return 2 * capacity(Encoding.UCS2), 2 * capacity(Encoding.UCS2, udh)
    return SMS_OCTETS, SMS_OCTETS - udh  # 8-bit codings: an octet a character


def chunk(payload: bytes, data_coding: int, limit: int) -> list[bytes]:
    """Cut ``payload`` into pieces of at most ``limit`` octets at safe character boundaries."""
    pieces: list[bytes] = []
    start, n = 0, len(payload)
    ucs2 = data_coding == DataCoding.UCS2
    if ucs2:
        limit -= limit % 2
    while start < n:
        end = min(start + limit, n)
        if end < n:
            if data_coding == DataCoding.SMSC_DEFAULT:
                # Walk septet units so a data ESC is never mistaken for an escaped character.
                i = start
                while i < end:
                    step = 2 if payload[i] == _ESC else 1
                    if i + step > end:
                        break
                    i += step
                end = i
            elif ucs2 and 0xD8 <= payload[end - 2] <= 0xDB:
                end -= 2  # the high half of a surrogate pair stays with its low half
        pieces.append(payload[start:end])
        start = end
    return pieces


def split(
    payload: bytes, data_coding: int, method: Method = Method.UDH8, *, ref: int = 0
) -> list[Part]:
    """The parts that carry ``payload``; one plain part if it fits in a single message."""
    if method is Method.PAYLOAD:
        return [Part(b"", 0, {Tag.message_payload: payload})]
    single, per_part = _limits(data_coding, method)
    if len(payload) <= single:
        return [Part(payload)]
    pieces = chunk(payload, data_coding, per_part)
    total = len(pieces)
    if total > 255:
        raise ValueError(f"message needs {total} parts; at most 255 are possible")
    parts = []
    for seq, piece in enumerate(pieces, 1):
        if method is Method.UDH8:
            udh = bytes((5, IEI_CONCAT_8, 3, ref & 0xFF, total, seq))
            parts.append(Part(udh + piece, UDHI))
        elif method is Method.UDH16:
            udh = bytes((6, IEI_CONCAT_16, 4, (ref >> 8) & 0xFF, ref & 0xFF, total, seq))
            parts.append(Part(udh + piece, UDHI))
        else:
            tlvs: dict[int, p.TlvValue] = {
                Tag.sar_msg_ref_num: ref & 0xFFFF,
                Tag.sar_total_segments: total,
                Tag.sar_segment_seqnum: seq,
            }
            parts.append(Part(piece, 0, tlvs))
    return parts


_Sm = TypeVar("_Sm", p.SubmitSm, p.DeliverSm)


def split_pdu(
    template: _Sm, payload: bytes, method: Method = Method.UDH8, *, ref: int = 0
) -> list[_Sm]:
    """Copies of ``template`` (addresses, flags, TLVs) carrying ``payload`` in parts."""
    return [
        replace(
            template,
            short_message=part.short_message,
            esm_class=template.esm_class | part.esm_class,
            tlvs={**template.tlvs, **part.tlvs},
            sequence_number=0,
        )
        for part in split(payload, template.data_coding, method, ref=ref)
    ]


def parse_udh(short_message: bytes) -> tuple[list[tuple[int, bytes]], bytes] | None:
    """(information elements, the data after the UDH), or None if the UDH is malformed."""
    if not short_message:
        return None
    end = 1 + short_message[0]
    if end > len(short_message):
        return None
    elements: list[tuple[int, bytes]] = []
    pos = 1
    while pos < end:
        if pos + 2 > end:
            return None
        iei, length = short_message[pos], short_message[pos + 1]
        if pos + 2 + length > end:
            return None
        elements.append((iei, short_message[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    return elements, short_message[end:]


def concat_info(pdu: p.SubmitSm | p.DeliverSm | p.DataSm) -> tuple[ConcatInfo | None, bytes]:
    """Where ``pdu`` sits in a long message (None if it is whole), and its own data."""
    data = pdu.tlvs.get(Tag.message_payload)
    if not isinstance(data, bytes):
        data = getattr(pdu, "short_message", b"")
    if pdu.esm_class & UDHI:
        parsed = parse_udh(data)
        if parsed is not None:
            elements, body = parsed
            for iei, value in elements:
                if iei == IEI_CONCAT_8 and len(value) == 3:
                    return ConcatInfo(value[0], value[1], value[2]), body
                if iei == IEI_CONCAT_16 and len(value) == 4:
                    return ConcatInfo((value[0] << 8) | value[1], value[2], value[3]), body
            return None, body
    total = pdu.tlvs.get(Tag.sar_total_segments)
    seq = pdu.tlvs.get(Tag.sar_segment_seqnum)
    ref = pdu.tlvs.get(Tag.sar_msg_ref_num)
    if isinstance(total, int) and isinstance(seq, int) and isinstance(ref, int):
        return ConcatInfo(ref, total, seq), data
    return None, data


@dataclass(slots=True)
class _Group:
    total: int
    touched: float
    parts: dict[int, bytes] = field(default_factory=dict)


GroupKey = tuple[str, str, int]


class Reassembler:
    """Collects parts keyed by (source, destination, ref) until a message is whole."""

    def __init__(self, *, max_groups: int = 10_000, timeout: float = 600.0) -> None:
        self.max_groups = max_groups
        self.timeout = timeout
        self._groups: OrderedDict[GroupKey, _Group] = OrderedDict()
        self.expired = 0  # groups dropped incomplete (timeout or eviction), for metrics

    def __len__(self) -> int:
        return len(self._groups)

    def add(
        self, source: str, dest: str, info: ConcatInfo, data: bytes, now: float
    ) -> bytes | None:
        """Store one part; the whole payload once every part has arrived, else None."""
        self.expire(now)
        if not 1 <= info.seq <= info.total:
            return None  # malformed header: nothing sensible to file it under
        if info.total == 1:
            return data
        key = (source, dest, info.ref)
        group = self._groups.get(key)
        if group is None or group.total != info.total:
            if group is not None:
                self.expired += 1  # the ref was reused for another message
            group = self._groups[key] = _Group(info.total, now)
            while len(self._groups) > self.max_groups:
                self._groups.popitem(last=False)
                self.expired += 1
        group.parts.setdefault(info.seq, data)  # a duplicate keeps the first copy
        group.touched = now
        self._groups.move_to_end(key)
        if len(group.parts) < group.total:
            return None
        del self._groups[key]
        return b"".join(group.parts[i] for i in range(1, group.total + 1))

    def feed(self, pdu: p.SubmitSm | p.DeliverSm | p.DataSm, now: float) -> bytes | None:
        """The whole payload when ``pdu`` completes a message (at once for an unsplit one)."""
        info, data = concat_info(pdu)
        if info is None:
            return data
        return self.add(pdu.source_addr, pdu.destination_addr, info, data, now)

    def expire(self, now: float) -> int:
        """Drop groups idle for longer than ``timeout``; returns how many were dropped."""
        dropped = 0
        deadline = now - self.timeout
        while self._groups:
            key, group = next(iter(self._groups.items()))
            if group.touched > deadline:
                break
            del self._groups[key]
            dropped += 1
        self.expired += dropped
        return dropped
