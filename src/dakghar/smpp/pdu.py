"""SMPP 3.4 PDUs as plain data: command ids, status codes, and one slotted dataclass per PDU.

Field names follow the specification (section 4) in snake_case. ``codec`` turns these objects into
bytes and back; ``connection`` tracks them on a session; ``tlv`` names the optional parameters that
live in each PDU's ``tlvs`` dict (tag -> value, insertion order kept so unknown tags round-trip).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

TlvValue = int | str | bytes


class CommandId(IntEnum):
    """SMPP 3.4 command ids (section 5.1.2.1)."""

    generic_nack = 0x80000000
    bind_receiver = 0x00000001
    bind_receiver_resp = 0x80000001
    bind_transmitter = 0x00000002
    bind_transmitter_resp = 0x80000002
    query_sm = 0x00000003
    query_sm_resp = 0x80000003
    submit_sm = 0x00000004
    submit_sm_resp = 0x80000004
    deliver_sm = 0x00000005
    deliver_sm_resp = 0x80000005
    unbind = 0x00000006
    unbind_resp = 0x80000006
    replace_sm = 0x00000007
    replace_sm_resp = 0x80000007
    cancel_sm = 0x00000008
    cancel_sm_resp = 0x80000008
    bind_transceiver = 0x00000009
    bind_transceiver_resp = 0x80000009
    outbind = 0x0000000B
    enquire_link = 0x00000015
    enquire_link_resp = 0x80000015
    submit_multi = 0x00000021
    submit_multi_resp = 0x80000021
    alert_notification = 0x00000102
    data_sm = 0x00000103
    data_sm_resp = 0x80000103


class CommandStatus(IntEnum):
    """SMPP 3.4 command_status values (section 5.1.3)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RCANCELFAIL = 0x11
    ESME_RREPLACEFAIL = 0x13
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVNUMDESTS = 0x33
    ESME_RINVDLNAME = 0x34
    ESME_RINVDESTFLAG = 0x40
    ESME_RINVSUBREP = 0x42
    ESME_RINVESMCLASS = 0x43
    ESME_RCNTSUBDL = 0x44
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RINVREPFLAG = 0x54
    ESME_RINVNUMMSGS = 0x55
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RINVDFTMSGID = 0x63
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RQUERYFAIL = 0x67
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF


RESPONSE_BIT = 0x80000000


@dataclass(slots=True, kw_only=True)
class Pdu:
    """Base of every PDU: the header fields the codec fills in, plus optional parameters."""

    command_id: ClassVar[CommandId]
    response_class: ClassVar[type[Pdu] | None] = None

    sequence_number: int = 0
    command_status: int = 0
    tlvs: dict[int, TlvValue] = field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        """True for *_resp PDUs and generic_nack."""
        return bool(self.command_id & RESPONSE_BIT)

    def response(self, status: int = 0, **fields: Any) -> Pdu:
        """Build this request's response with the same sequence number."""
        return response_for(self, status=status, **fields)


def response_for(request: Pdu, *, status: int = 0, **fields: Any) -> Pdu:
    """The *_resp matching ``request`` (same sequence number), or generic_nack if it has none."""
    cls = request.response_class or GenericNack
    return cls(sequence_number=request.sequence_number, command_status=int(status), **fields)


# --- session management (4.1, 4.2) --------------------------------------------------------------


@dataclass(slots=True)
class _Bind(Pdu):
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(slots=True)
class _BindResp(Pdu):
    system_id: str = ""


@dataclass(slots=True)
class BindTransmitterResp(_BindResp):
    command_id = CommandId.bind_transmitter_resp


@dataclass(slots=True)
class BindReceiverResp(_BindResp):
    command_id = CommandId.bind_receiver_resp


@dataclass(slots=True)
class BindTransceiverResp(_BindResp):
    command_id = CommandId.bind_transceiver_resp


@dataclass(slots=True)
class BindTransmitter(_Bind):
    command_id = CommandId.bind_transmitter
    response_class = BindTransmitterResp


@dataclass(slots=True)
class BindReceiver(_Bind):
    command_id = CommandId.bind_receiver
    response_class = BindReceiverResp


@dataclass(slots=True)
class BindTransceiver(_Bind):
    command_id = CommandId.bind_transceiver
    response_class = BindTransceiverResp


@dataclass(slots=True)
class Outbind(Pdu):
    command_id = CommandId.outbind
    system_id: str = ""
    password: str = ""


@dataclass(slots=True)
class UnbindResp(Pdu):
    command_id = CommandId.unbind_resp


@dataclass(slots=True)
class Unbind(Pdu):
    command_id = CommandId.unbind
    response_class = UnbindResp


@dataclass(slots=True)
class GenericNack(Pdu):
    command_id = CommandId.generic_nack


@dataclass(slots=True)
class EnquireLinkResp(Pdu):
    command_id = CommandId.enquire_link_resp


@dataclass(slots=True)
class EnquireLink(Pdu):
    command_id = CommandId.enquire_link
    response_class = EnquireLinkResp


@dataclass(slots=True)
class AlertNotification(Pdu):
    """SMSC -> ESME; it has no response (4.12)."""

    command_id = CommandId.alert_notification
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


# --- message submission and delivery (4.4 - 4.7) ------------------------------------------------


@dataclass(slots=True)
class _ShortMessage(Pdu):
    """The shared layout of submit_sm and deliver_sm (4.4.1, 4.6.1)."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(slots=True)
class SubmitSmResp(Pdu):
    command_id = CommandId.submit_sm_resp
    message_id: str = ""


@dataclass(slots=True)
class SubmitSm(_ShortMessage):
    command_id = CommandId.submit_sm
    response_class = SubmitSmResp


@dataclass(slots=True)
class DeliverSmResp(Pdu):
    command_id = CommandId.deliver_sm_resp
    message_id: str = ""


@dataclass(slots=True)
class DeliverSm(_ShortMessage):
    command_id = CommandId.deliver_sm
    response_class = DeliverSmResp


@dataclass(slots=True, frozen=True)
class SmeAddress:
    """One submit_multi destination of dest_flag 1."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(slots=True, frozen=True)
class DistributionList:
    """One submit_multi destination of dest_flag 2."""

    dl_name: str = ""


@dataclass(slots=True, frozen=True)
class UnsuccessSme:
    """One failed destination in submit_multi_resp."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    error_status_code: int = 0


@dataclass(slots=True)
class SubmitMultiResp(Pdu):
    command_id = CommandId.submit_multi_resp
    message_id: str = ""
    unsuccess_smes: list[UnsuccessSme] = field(default_factory=list)


@dataclass(slots=True)
class SubmitMulti(Pdu):
    command_id = CommandId.submit_multi
    response_class = SubmitMultiResp
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addresses: list[SmeAddress | DistributionList] = field(default_factory=list)
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(slots=True)
class DataSmResp(Pdu):
    command_id = CommandId.data_sm_resp
    message_id: str = ""


@dataclass(slots=True)
class DataSm(Pdu):
    command_id = CommandId.data_sm
    response_class = DataSmResp
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


# --- ancillary operations (4.8 - 4.10) ----------------------------------------------------------


@dataclass(slots=True)
class QuerySmResp(Pdu):
    command_id = CommandId.query_sm_resp
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


@dataclass(slots=True)
class QuerySm(Pdu):
    command_id = CommandId.query_sm
    response_class = QuerySmResp
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(slots=True)
class CancelSmResp(Pdu):
    command_id = CommandId.cancel_sm_resp


@dataclass(slots=True)
class CancelSm(Pdu):
    command_id = CommandId.cancel_sm
    response_class = CancelSmResp
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(slots=True)
class ReplaceSmResp(Pdu):
    command_id = CommandId.replace_sm_resp


@dataclass(slots=True)
class ReplaceSm(Pdu):
    command_id = CommandId.replace_sm
    response_class = ReplaceSmResp
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        Outbind,
        Unbind,
        UnbindResp,
        GenericNack,
        EnquireLink,
        EnquireLinkResp,
        AlertNotification,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        SubmitMulti,
        SubmitMultiResp,
        DataSm,
        DataSmResp,
        QuerySm,
        QuerySmResp,
        CancelSm,
        CancelSmResp,
        ReplaceSm,
        ReplaceSmResp,
    )
}

BIND_CLASSES = (BindTransmitter, BindReceiver, BindTransceiver)
BIND_RESP_CLASSES = (BindTransmitterResp, BindReceiverResp, BindTransceiverResp)
