"""SMPP 3.4 wire codec: one PDU object <-> the bytes of exactly one PDU.

``encode`` is strict (spec field sizes, ranges; raises ``EncodeError``). ``decode`` is tolerant
where real peers deviate harmlessly (a last C-string without its NUL, an empty body on a response)
and precise where they do not: a ``DecodeError`` says which ``CommandStatus`` to answer with.
Layouts come from one table per PDU class (``pdu``), compiled at import into precomputed
``struct.Struct``s and attribute getters, so no reflection happens per call; submit_sm and
deliver_sm take the faster path in ``codec_sm``, TLVs are read and written by ``tlv``. Framing of a
byte stream (partial and pipelined PDUs) is ``connection``'s job.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from dakghar.smpp import pdu as p
from dakghar.smpp.codec_sm import HEADER as HEADER  # re-exported: connection frames with it
from dakghar.smpp.codec_sm import SHORT_MESSAGE_MAX as SHORT_MESSAGE_MAX
from dakghar.smpp.codec_sm import decode_short_message, encode_short_message
from dakghar.smpp.errors import DecodeError, EncodeError
from dakghar.smpp.pdu import CommandStatus as S
from dakghar.smpp.tlv import decode_tlvs as decode_tlvs
from dakghar.smpp.tlv import encode_tlvs as encode_tlvs

_U32 = struct.Struct(">I")

# Field kinds in a layout.
_CSTR, _INTS, _SM, _DESTS, _UNSUCC = range(5)

# (name, spec): spec is "u8", "sm", "dests", "unsucc", or (max octets incl. NUL, status if longer).
_FieldSpec = tuple[str, Any]


def _c(name: str, size: int, status: int = S.ESME_RINVPARLEN) -> _FieldSpec:
    return (name, (size, status))


_SERVICE = _c("service_type", 6, S.ESME_RINVSERTYP)
_SRC21 = _c("source_addr", 21, S.ESME_RINVSRCADR)
_DST21 = _c("destination_addr", 21, S.ESME_RINVDSTADR)
_SCHED = _c("schedule_delivery_time", 17, S.ESME_RINVSCHED)
_VALID = _c("validity_period", 17, S.ESME_RINVEXPIRY)
_MSGID = _c("message_id", 65, S.ESME_RINVMSGID)
_SYSID = _c("system_id", 16, S.ESME_RINVSYSID)
_PASSWD = _c("password", 9, S.ESME_RINVPASWD)

_BIND: list[_FieldSpec] = [
    _SYSID,
    _PASSWD,
    _c("system_type", 13, S.ESME_RINVSYSTYP),
    ("interface_version", "u8"),
    ("addr_ton", "u8"),
    ("addr_npi", "u8"),
    _c("address_range", 41),
]
_SHORT_MESSAGE: list[_FieldSpec] = [
    _SERVICE,
    ("source_addr_ton", "u8"),
    ("source_addr_npi", "u8"),
    _SRC21,
    ("dest_addr_ton", "u8"),
    ("dest_addr_npi", "u8"),
    _DST21,
    ("esm_class", "u8"),
    ("protocol_id", "u8"),
    ("priority_flag", "u8"),
    _SCHED,
    _VALID,
    ("registered_delivery", "u8"),
    ("replace_if_present_flag", "u8"),
    ("data_coding", "u8"),
    ("sm_default_msg_id", "u8"),
    ("short_message", "sm"),
]

LAYOUTS: dict[type[p.Pdu], list[_FieldSpec]] = {
    p.BindTransmitter: _BIND,
    p.BindReceiver: _BIND,
    p.BindTransceiver: _BIND,
    p.BindTransmitterResp: [_SYSID],
    p.BindReceiverResp: [_SYSID],
    p.BindTransceiverResp: [_SYSID],
    p.Outbind: [_SYSID, _PASSWD],
    p.Unbind: [],
    p.UnbindResp: [],
    p.GenericNack: [],
    p.EnquireLink: [],
    p.EnquireLinkResp: [],
    p.AlertNotification: [
        ("source_addr_ton", "u8"),
        ("source_addr_npi", "u8"),
        _c("source_addr", 65, S.ESME_RINVSRCADR),
        ("esme_addr_ton", "u8"),
        ("esme_addr_npi", "u8"),
        _c("esme_addr", 65, S.ESME_RINVDSTADR),
    ],
    p.SubmitSm: _SHORT_MESSAGE,
    p.DeliverSm: _SHORT_MESSAGE,
    p.SubmitSmResp: [_MSGID],
    p.DeliverSmResp: [_MSGID],
    p.SubmitMulti: [
        _SERVICE,
        ("source_addr_ton", "u8"),
        ("source_addr_npi", "u8"),
        _SRC21,
        ("dest_addresses", "dests"),
        *_SHORT_MESSAGE[7:],
    ],
    p.SubmitMultiResp: [_MSGID, ("unsuccess_smes", "unsucc")],
    p.DataSm: [
        _SERVICE,
        ("source_addr_ton", "u8"),
        ("source_addr_npi", "u8"),
        _c("source_addr", 65, S.ESME_RINVSRCADR),
        ("dest_addr_ton", "u8"),
        ("dest_addr_npi", "u8"),
        _c("destination_addr", 65, S.ESME_RINVDSTADR),
        ("esm_class", "u8"),
        ("registered_delivery", "u8"),
        ("data_coding", "u8"),
    ],
    p.DataSmResp: [_MSGID],
    p.QuerySm: [_MSGID, ("source_addr_ton", "u8"), ("source_addr_npi", "u8"), _SRC21],
    p.QuerySmResp: [
        _MSGID,
        _c("final_date", 17),
        ("message_state", "u8"),
        ("error_code", "u8"),
    ],
    p.CancelSm: [
        _SERVICE,
        _MSGID,
        ("source_addr_ton", "u8"),
        ("source_addr_npi", "u8"),
        _SRC21,
        ("dest_addr_ton", "u8"),
        ("dest_addr_npi", "u8"),
        _DST21,
    ],
    p.CancelSmResp: [],
    p.ReplaceSm: [
        _MSGID,
        ("source_addr_ton", "u8"),
        ("source_addr_npi", "u8"),
        _SRC21,
        _SCHED,
        _VALID,
        ("registered_delivery", "u8"),
        ("sm_default_msg_id", "u8"),
        ("short_message", "sm"),
    ],
    p.ReplaceSmResp: [],
}

# A compiled op is (kind, arg, status, is_last_field, field name).
_Op = tuple[int, Any, int, bool, str]


class _Layout:
    __slots__ = ("cls", "command_id", "getter", "ops")

    def __init__(self, cls: type[p.Pdu], fields: Sequence[_FieldSpec]) -> None:
        self.cls = cls
        self.command_id = int(cls.command_id)
        names = [name for name, _ in fields]
        self.getter: Callable[[Any], tuple[Any, ...]] = (
            attrgetter(*names, "tlvs") if names else (lambda pdu: (pdu.tlvs,))
        )
        ops: list[_Op] = []
        run: list[str] = []
        for index, (name, spec) in enumerate(fields):
            if spec == "u8":
                run.append(name)
                continue
            if run:
                ops.append((_INTS, struct.Struct(">" + "B" * len(run)), len(run), False, run[0]))
                run = []
            last = index == len(fields) - 1
            if isinstance(spec, tuple):
                ops.append((_CSTR, spec[0], spec[1], last, name))
            else:
                kind = {"sm": _SM, "dests": _DESTS, "unsucc": _UNSUCC}[spec]
                ops.append((kind, None, 0, last, name))
        if run:
            ops.append((_INTS, struct.Struct(">" + "B" * len(run)), len(run), False, run[0]))
        self.ops = tuple(ops)


_BY_CLASS: dict[type[p.Pdu], _Layout] = {cls: _Layout(cls, f) for cls, f in LAYOUTS.items()}
_BY_ID: dict[int, _Layout] = {layout.command_id: layout for layout in _BY_CLASS.values()}


# --- encoding ------------------------------------------------------------------------------------


def _cstr_bytes(value: str, size: int, name: str) -> bytes:
    raw = value.encode("latin-1")
    if len(raw) >= size:
        raise EncodeError(f"{name} is {len(raw)} octets; at most {size - 1} allowed")
    if 0 in raw:
        raise EncodeError(f"{name} contains a NUL")
    return raw + b"\x00"


def encode(pdu: p.Pdu) -> bytes:
    """The bytes of one PDU, header included; raises ``EncodeError`` for values the spec forbids."""
    cls = type(pdu)
    if cls is p.SubmitSm or cls is p.DeliverSm:
        fast = encode_short_message(pdu)  # type: ignore[arg-type]
        if fast is not None:
            return fast
    layout = _BY_CLASS.get(cls)
    if layout is None:
        raise EncodeError(f"not an SMPP PDU: {type(pdu).__name__}")
    values = layout.getter(pdu)
    parts: list[bytes] = []
    append = parts.append
    i = 0
    try:
        for kind, arg, _status, _last, name in layout.ops:
            if kind == _CSTR:
                append(_cstr_bytes(values[i], arg, name))
                i += 1
            elif kind == _INTS:
                append(arg.pack(*values[i : i + arg.size]))
                i += arg.size
            elif kind == _SM:
                message = values[i]
                if len(message) > SHORT_MESSAGE_MAX:
                    raise EncodeError(
                        f"short_message is {len(message)} octets; at most 254 allowed "
                        "(use the message_payload TLV)"
                    )
                append(bytes((len(message),)))
                append(message)
                i += 1
            elif kind == _DESTS:
                append(_encode_dests(values[i]))
                i += 1
            else:
                append(_encode_unsuccess(values[i]))
                i += 1
        tlvs = values[i]
        if tlvs:
            append(encode_tlvs(tlvs))
        body = b"".join(parts)
        return (
            HEADER.pack(16 + len(body), layout.command_id, pdu.command_status, pdu.sequence_number)
            + body
        )
    except (struct.error, UnicodeEncodeError, TypeError, OverflowError) as exc:
        raise EncodeError(f"{type(pdu).__name__}: {exc}") from exc


def _encode_dests(dests: Sequence[p.SmeAddress | p.DistributionList]) -> bytes:
    if len(dests) > 254:
        raise EncodeError("submit_multi allows at most 254 destinations")
    out = [bytes((len(dests),))]
    for dest in dests:
        if isinstance(dest, p.SmeAddress):
            out.append(bytes((1, dest.dest_addr_ton, dest.dest_addr_npi)))
            out.append(_cstr_bytes(dest.destination_addr, 21, "destination_addr"))
        else:
            out.append(b"\x02" + _cstr_bytes(dest.dl_name, 21, "dl_name"))
    return b"".join(out)


def _encode_unsuccess(smes: Sequence[p.UnsuccessSme]) -> bytes:
    if len(smes) > 255:
        raise EncodeError("submit_multi_resp allows at most 255 unsuccessful SMEs")
    out = [bytes((len(smes),))]
    for sme in smes:
        out.append(bytes((sme.dest_addr_ton, sme.dest_addr_npi)))
        out.append(_cstr_bytes(sme.destination_addr, 21, "destination_addr"))
        out.append(_U32.pack(sme.error_status_code))
    return b"".join(out)


# --- decoding ------------------------------------------------------------------------------------


def decode(data: bytes) -> p.Pdu:
    """Decode exactly one complete PDU; raises ``DecodeError`` carrying the status to answer."""
    if len(data) < 16:
        raise DecodeError("shorter than a PDU header", status=S.ESME_RINVCMDLEN)
    length, command_id, status, sequence = HEADER.unpack_from(data)
    if length != len(data):
        raise DecodeError(
            f"command_length {length} but {len(data)} octets given",
            status=S.ESME_RINVCMDLEN,
            command_id=command_id,
            sequence_number=sequence,
        )
    if command_id == 4 or command_id == 5:
        fast = decode_short_message(
            p.SubmitSm if command_id == 4 else p.DeliverSm, status, sequence, data, 16
        )
        if fast is not None:
            return fast
    return decode_body(command_id, status, sequence, data, 16)


def decode_body(command_id: int, status: int, sequence: int, data: bytes, start: int) -> p.Pdu:
    """Decode the body in ``data[start:]`` of a PDU whose header was already read."""
    layout = _BY_ID.get(command_id)
    if layout is None:
        raise DecodeError(
            f"unknown command_id {command_id:#010x}",
            status=S.ESME_RINVCMDID,
            command_id=command_id,
            sequence_number=sequence,
        )
    end = len(data)
    if command_id == 4 or command_id == 5:
        cls = p.SubmitSm if command_id == 4 else p.DeliverSm
        fast = decode_short_message(cls, status, sequence, data, start)
        if fast is not None:
            return fast
    if start == end and command_id & p.RESPONSE_BIT:
        # Error responses (and a few sloppy SMSCs) leave the body out entirely.
        return layout.cls(sequence_number=sequence, command_status=status)
    try:
        values, pos = _decode_fields(layout.ops, data, start, end)
        tlvs = decode_tlvs(data, pos, end) if pos < end else {}
    except DecodeError as exc:
        exc.command_id, exc.sequence_number = command_id, sequence
        raise
    return layout.cls(*values, sequence_number=sequence, command_status=status, tlvs=tlvs)


def _decode_fields(ops: tuple[_Op, ...], data: bytes, pos: int, end: int) -> tuple[list[Any], int]:
    values: list[Any] = []
    append = values.append
    for kind, arg, status, last, name in ops:
        if kind == _CSTR:
            value, pos = _cstr(data, pos, end, arg, status, last, name)
            append(value)
        elif kind == _INTS:
            if pos + arg.size > end:
                raise DecodeError(f"body ends inside {name}", status=S.ESME_RINVCMDLEN)
            values.extend(arg.unpack_from(data, pos))
            pos += arg.size
        elif kind == _SM:
            if pos >= end:
                raise DecodeError("body ends before sm_length", status=S.ESME_RINVCMDLEN)
            if data[pos] > SHORT_MESSAGE_MAX:
                raise DecodeError("sm_length above 254", status=S.ESME_RINVMSGLEN)
            stop = pos + 1 + data[pos]
            if stop > end:
                raise DecodeError("sm_length runs past the PDU", status=S.ESME_RINVMSGLEN)
            append(data[pos + 1 : stop])
            pos = stop
        elif kind == _DESTS:
            dests, pos = _decode_dests(data, pos, end)
            append(dests)
        else:
            smes, pos = _decode_unsuccess(data, pos, end)
            append(smes)
    return values, pos


def _cstr(
    data: bytes, pos: int, end: int, size: int, status: int, last: bool, name: str
) -> tuple[str, int]:
    limit = pos + size
    nul = data.find(0, pos, limit if limit < end else end)
    if nul >= 0:
        return data[pos:nul].decode("latin-1"), nul + 1
    if limit < end:
        raise DecodeError(f"{name} longer than {size - 1} octets", status=status)
    if last and end - pos < size:
        # Tolerated: the PDU's final C-string lost its NUL (seen from several SMSCs).
        return data[pos:end].decode("latin-1"), end
    raise DecodeError(f"body ends inside {name}", status=S.ESME_RINVCMDLEN)


def _decode_dests(data: bytes, pos: int, end: int) -> tuple[list[Any], int]:
    if pos >= end:
        raise DecodeError("body ends before number_of_dests", status=S.ESME_RINVCMDLEN)
    count = data[pos]
    pos += 1
    dests: list[p.SmeAddress | p.DistributionList] = []
    for _ in range(count):
        if pos + 1 > end:
            raise DecodeError("body ends inside dest_address", status=S.ESME_RINVCMDLEN)
        flag = data[pos]
        if flag == 1:
            if pos + 3 > end:
                raise DecodeError("body ends inside dest_address", status=S.ESME_RINVCMDLEN)
            ton, npi = data[pos + 1], data[pos + 2]
            addr, pos = _cstr(data, pos + 3, end, 21, S.ESME_RINVDSTADR, False, "destination_addr")
            dests.append(p.SmeAddress(ton, npi, addr))
        elif flag == 2:
            dl_name, pos = _cstr(data, pos + 1, end, 21, S.ESME_RINVDLNAME, False, "dl_name")
            dests.append(p.DistributionList(dl_name))
        else:
            raise DecodeError(f"dest_flag {flag}", status=S.ESME_RINVDESTFLAG)
    return dests, pos


def _decode_unsuccess(data: bytes, pos: int, end: int) -> tuple[list[Any], int]:
    if pos >= end:
        raise DecodeError("body ends before no_unsuccess", status=S.ESME_RINVCMDLEN)
    count = data[pos]
    pos += 1
    smes = []
    for _ in range(count):
        if pos + 2 > end:
            raise DecodeError("body ends inside unsuccess_sme", status=S.ESME_RINVCMDLEN)
        ton, npi = data[pos], data[pos + 1]
        addr, pos = _cstr(data, pos + 2, end, 21, S.ESME_RINVDSTADR, False, "destination_addr")
        if pos + 4 > end:
            raise DecodeError("body ends inside error_status_code", status=S.ESME_RINVCMDLEN)
        (code,) = _U32.unpack_from(data, pos)
        pos += 4
        smes.append(p.UnsuccessSme(ton, npi, addr, code))
    return smes, pos
