"""SMPP 3.4 optional parameters (TLVs): tag names and the value type the spec fixes for each.

A PDU keeps its TLVs in ``pdu.tlvs``, a dict of tag -> value in wire order. Known tags decode to an
``int`` (1, 2 or 4 octets), a ``str`` (C-octet strings, NUL dropped) or ``bytes`` (octet strings);
unknown and vendor tags stay raw ``bytes`` and re-encode byte for byte. ``encode_tlvs`` and
``decode_tlvs`` do the wire work for ``codec``.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from dakghar.smpp.errors import DecodeError, EncodeError
from dakghar.smpp.pdu import CommandStatus as S
from dakghar.smpp.pdu import TlvValue

_TL = struct.Struct(">HH")


class Tag(IntEnum):
    """Standard SMPP 3.4 TLV tags (section 5.3.2) and the Indian DLT vendor tags."""

    dest_addr_subunit = 0x0005
    dest_network_type = 0x0006
    dest_bearer_type = 0x0007
    dest_telematics_id = 0x0008
    source_addr_subunit = 0x000D
    source_network_type = 0x000E
    source_bearer_type = 0x000F
    source_telematics_id = 0x0010
    qos_time_to_live = 0x0017
    payload_type = 0x0019
    additional_status_info_text = 0x001D
    receipted_message_id = 0x001E
    ms_msg_wait_facilities = 0x0030
    privacy_indicator = 0x0201
    source_subaddress = 0x0202
    dest_subaddress = 0x0203
    user_message_reference = 0x0204
    user_response_code = 0x0205
    source_port = 0x020A
    destination_port = 0x020B
    dest_port = 0x020B  # the short name many libraries use; an alias of destination_port
    sar_msg_ref_num = 0x020C
    language_indicator = 0x020D
    sar_total_segments = 0x020E
    sar_segment_seqnum = 0x020F
    sc_interface_version = 0x0210
    callback_num_pres_ind = 0x0302
    callback_num_atag = 0x0303
    number_of_messages = 0x0304
    callback_num = 0x0381
    dpf_result = 0x0420
    set_dpf = 0x0421
    ms_availability_status = 0x0422
    network_error_code = 0x0423
    message_payload = 0x0424
    delivery_failure_reason = 0x0425
    more_messages_to_send = 0x0426
    message_state = 0x0427
    ussd_service_op = 0x0501
    display_time = 0x1201
    sms_signal = 0x1203
    ms_validity = 0x1204
    alert_on_message_delivery = 0x130C
    its_reply_type = 0x1380
    its_session_info = 0x1383
    # India's TRAI DLT rules make operators require the principal entity id and the content
    # template id on every commercial submit_sm, as vendor TLVs (0x1400-0x3FFF is reserved for
    # SMSC vendors, spec 5.3.2). Sources: the operator table quoted in python-smpplib issue #204
    # (PE_ID 0x1400, Template_ID 0x1401) and onlinecity/php-smpp issue #95 (0x1400 PEID, 0x1401
    # TEMPLATE_ID, 0x1402 TELEMARKETER_ID); a ksmppd log (kneodev/ksmppd #135) shows 0x1400 sent
    # as 19 ASCII digits without a NUL, which is how ``dlt_tlvs`` writes them. One user in
    # jookies/jasmin #1183 quotes the two ids swapped, so connectors should allow an override.
    dlt_pe_id = 0x1400
    dlt_template_id = 0x1401
    dlt_telemarketer_id = 0x1402


PE_ID = Tag.dlt_pe_id
TEMPLATE_ID = Tag.dlt_template_id
TELEMARKETER_ID = Tag.dlt_telemarketer_id

# Value kinds: a positive number is an unsigned int of that many octets; the rest are below.
CSTRING = -1
OCTETS = 0

# The value type the spec fixes per tag (5.3.2.x); every tag not listed here is OCTETS.
# Maximum lengths for C-strings include the NUL.
TAG_KINDS: dict[int, int] = {
    Tag.dest_addr_subunit: 1,
    Tag.dest_network_type: 1,
    Tag.dest_bearer_type: 1,
    Tag.dest_telematics_id: 2,
    Tag.source_addr_subunit: 1,
    Tag.source_network_type: 1,
    Tag.source_bearer_type: 1,
    Tag.source_telematics_id: 1,
    Tag.qos_time_to_live: 4,
    Tag.payload_type: 1,
    Tag.additional_status_info_text: CSTRING,
    Tag.receipted_message_id: CSTRING,
    Tag.ms_msg_wait_facilities: 1,
    Tag.privacy_indicator: 1,
    Tag.user_message_reference: 2,
    Tag.user_response_code: 1,
    Tag.source_port: 2,
    Tag.destination_port: 2,
    Tag.sar_msg_ref_num: 2,
    Tag.language_indicator: 1,
    Tag.sar_total_segments: 1,
    Tag.sar_segment_seqnum: 1,
    Tag.sc_interface_version: 1,
    Tag.callback_num_pres_ind: 1,
    Tag.number_of_messages: 1,
    Tag.dpf_result: 1,
    Tag.set_dpf: 1,
    Tag.ms_availability_status: 1,
    Tag.delivery_failure_reason: 1,
    Tag.more_messages_to_send: 1,
    Tag.message_state: 1,
    Tag.display_time: 1,
    Tag.sms_signal: 2,
    Tag.ms_validity: 1,
    Tag.its_reply_type: 1,
}

CSTRING_MAX: dict[int, int] = {
    Tag.additional_status_info_text: 256,
    Tag.receipted_message_id: 65,
}


def dlt_tlvs(
    pe_id: str, template_id: str, telemarketer_id: str | None = None
) -> dict[int, TlvValue]:
    """The DLT TLVs for a submit_sm, as ASCII octet strings without a trailing NUL."""
    tlvs: dict[int, TlvValue] = {
        PE_ID: pe_id.encode("ascii"),
        TEMPLATE_ID: template_id.encode("ascii"),
    }
    if telemarketer_id:
        tlvs[TELEMARKETER_ID] = telemarketer_id.encode("ascii")
    return tlvs


def tlv_text(value: int | str | bytes | None) -> str | None:
    """A TLV value read as text whatever its wire type (vendor tags arrive as bytes)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.rstrip(b"\x00").decode("latin-1")
    return str(value)


def encode_tlvs(tlvs: dict[int, TlvValue]) -> bytes:
    """The wire form of optional parameters, in dict order."""
    out = []
    for tag, value in tlvs.items():
        kind = TAG_KINDS.get(tag, 0)
        if isinstance(value, bytes):
            raw = value
        elif isinstance(value, str):
            raw = value.encode("latin-1") + (b"\x00" if kind == CSTRING else b"")
            if kind == CSTRING and len(raw) > CSTRING_MAX[tag]:
                raise EncodeError(f"TLV {tag:#06x} is longer than {CSTRING_MAX[tag]} octets")
        elif isinstance(value, int) and kind > 0:
            if not 0 <= value < 1 << (8 * kind):
                raise EncodeError(f"TLV {tag:#06x} value {value} does not fit {kind} octets")
            raw = value.to_bytes(kind, "big")
        else:
            raise EncodeError(f"TLV {tag:#06x} cannot hold a {type(value).__name__}")
        if len(raw) > 0xFFFF or not 0 <= tag <= 0xFFFF:
            raise EncodeError(f"TLV {tag:#06x} does not fit the 16-bit tag/length fields")
        out.append(_TL.pack(tag, len(raw)))
        out.append(raw)
    return b"".join(out)


def decode_tlvs(data: bytes, pos: int, end: int) -> dict[int, TlvValue]:
    """Optional parameters from ``data[pos:end]``; unknown tags are kept as raw bytes."""
    tlvs: dict[int, TlvValue] = {}
    while pos < end:
        if end - pos < 4:
            raise DecodeError("truncated TLV header", status=S.ESME_RINVOPTPARSTREAM)
        tag, length = _TL.unpack_from(data, pos)
        pos += 4
        stop = pos + length
        if stop > end:
            raise DecodeError(f"TLV {tag:#06x} runs past the PDU", status=S.ESME_RINVOPTPARSTREAM)
        kind = TAG_KINDS.get(tag, 0)
        if kind > 0:
            if length != kind:
                raise DecodeError(
                    f"TLV {tag:#06x} has length {length}, expected {kind}",
                    status=S.ESME_RINVPARLEN,
                )
            tlvs[tag] = int.from_bytes(data[pos:stop], "big")
        elif kind == CSTRING:
            if length > CSTRING_MAX[tag]:
                raise DecodeError(f"TLV {tag:#06x} too long", status=S.ESME_RINVPARLEN)
            raw = data[pos : stop - 1] if length and data[stop - 1] == 0 else data[pos:stop]
            tlvs[tag] = raw.decode("latin-1")
        else:
            tlvs[tag] = data[pos:stop]
        pos = stop
    return tlvs
