"""The hot path of the codec: submit_sm and deliver_sm, which carry nearly all traffic.

These functions handle the well-formed case only and return None on any irregularity, so that
``codec``'s table-driven code stays the single source of errors (and of their ``CommandStatus``).
The decoder reads every mandatory field of the shared layout (SMPP 3.4 4.4.1 / 4.6.1) with one
precompiled regular expression, which runs in C; the field sizes in it are the spec's maxima.
"""

from __future__ import annotations

import re
import struct

from dakghar.smpp import pdu as p
from dakghar.smpp.errors import DecodeError
from dakghar.smpp.tlv import decode_tlvs, encode_tlvs

HEADER = struct.Struct(">IIII")
SHORT_MESSAGE_MAX = 254

_B2 = struct.Struct(">BB")
_B3 = struct.Struct(">BBB")
_B4 = struct.Struct(">BBBB")

# service_type, source ton/npi, source_addr, dest ton/npi, destination_addr, esm_class..priority,
# schedule_delivery_time, validity_period, registered_delivery..sm_default_msg_id + sm_length.
_LAYOUT = re.compile(
    rb"([^\0]{0,5})\0(..)([^\0]{0,20})\0(..)([^\0]{0,20})\0(...)([^\0]{0,16})\0([^\0]{0,16})\0(.....)",
    re.DOTALL,
)


def encode_short_message(pdu: p.SubmitSm | p.DeliverSm) -> bytes | None:
    """The PDU's bytes, or None to let the general encoder find and report the problem."""
    try:
        service_type = pdu.service_type.encode("latin-1")
        source = pdu.source_addr.encode("latin-1")
        dest = pdu.destination_addr.encode("latin-1")
        schedule = pdu.schedule_delivery_time.encode("latin-1")
        validity = pdu.validity_period.encode("latin-1")
        message = pdu.short_message
        if (
            len(service_type) > 5
            or len(source) > 20
            or len(dest) > 20
            or len(schedule) > 16
            or len(validity) > 16
            or len(message) > SHORT_MESSAGE_MAX
            or 0 in service_type
            or 0 in source
            or 0 in dest
            or 0 in schedule
            or 0 in validity
        ):
            return None
        body = b"".join(
            (
                service_type,
                b"\x00",
                _B2.pack(pdu.source_addr_ton, pdu.source_addr_npi),
                source,
                b"\x00",
                _B2.pack(pdu.dest_addr_ton, pdu.dest_addr_npi),
                dest,
                b"\x00",
                _B3.pack(pdu.esm_class, pdu.protocol_id, pdu.priority_flag),
                schedule,
                b"\x00",
                validity,
                b"\x00",
                _B4.pack(
                    pdu.registered_delivery,
                    pdu.replace_if_present_flag,
                    pdu.data_coding,
                    pdu.sm_default_msg_id,
                ),
                bytes((len(message),)),
                message,
                encode_tlvs(pdu.tlvs) if pdu.tlvs else b"",
            )
        )
        header = HEADER.pack(
            16 + len(body), pdu.command_id, pdu.command_status, pdu.sequence_number
        )
    except (struct.error, UnicodeEncodeError, TypeError, AttributeError, OverflowError, ValueError):
        return None
    return header + body


def decode_short_message(
    cls: type[p.SubmitSm] | type[p.DeliverSm], status: int, sequence: int, data: bytes, pos: int
) -> p.SubmitSm | p.DeliverSm | None:
    """The PDU in ``data[pos:]``, or None to let the general decoder report what is wrong."""
    match = _LAYOUT.match(data, pos)
    if match is None:
        return None
    service_type, source_ton_npi, source, dest_ton_npi, dest, esm, schedule, validity, tail = (
        match.groups()
    )
    start = match.end()
    stop = start + tail[4]
    end = len(data)
    if stop > end or tail[4] > SHORT_MESSAGE_MAX:
        return None
    try:
        tlvs = decode_tlvs(data, stop, end) if stop < end else {}
    except DecodeError:
        return None
    return cls(
        service_type.decode("latin-1"),
        source_ton_npi[0],
        source_ton_npi[1],
        source.decode("latin-1"),
        dest_ton_npi[0],
        dest_ton_npi[1],
        dest.decode("latin-1"),
        esm[0],
        esm[1],
        esm[2],
        schedule.decode("latin-1"),
        validity.decode("latin-1"),
        tail[0],
        tail[1],
        tail[2],
        tail[3],
        data[start:stop],
        sequence_number=sequence,
        command_status=status,
        tlvs=tlvs,
    )
