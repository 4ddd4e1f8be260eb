"""The SMPP connector: the dispatcher's :class:`Connector` for an SMSC, over one or more binds.

Configured by a ``[[connectors]]`` table with ``type = "smpp"`` (see :class:`SmppConnectorConfig`).
It turns an :class:`Outbound` message into ``submit_sm`` PDUs (GSM 03.38 or UCS-2, long messages
split by UDH, SAR or ``message_payload``, validity as SMPP relative time, DLT entity and template
ids as TLVs when ``dlt`` is on), sends them over the least-loaded bind, and maps every answer:

============================================  ===============================================
SMSC answer                                   what the dispatcher is told
============================================  ===============================================
``ESME_ROK``                                  accepted, with the SMSC's id for every part
``ESME_RTHROTTLED``, ``ESME_RMSGQFUL``        temporary, slow down
``ESME_RSYSERR``, ``ESME_RX_T_APPN``, not     temporary
bound, connection lost before sending
timeout, connection lost after sending        temporary, the SMSC may have it (``maybe_sent``)
``ESME_RINVDSTADR``                           permanent ``invalid_number``
(a field our codec cannot encode: not sent)   permanent ``carrier_rejected``
anything else                                 permanent ``carrier_rejected``
============================================  ===============================================

Delivery receipts (``deliver_sm`` with a receipt, or its TLVs) become :class:`Report` objects,
awaited by the dispatcher before the ``deliver_sm_resp`` goes out. Other inbound messages (mobile
originated) are reassembled and handed to ``on_inbound``.

``tls = true`` opens every bind over TLS, verified (chain and host name) against the system's
trust store or ``ca_file``; ``tls_verify = false`` turns verification off, for a carrier's test
SMSC with a self-signed certificate, and only when written out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from dakghar.connectors.base import Accepted, ConnectorError, Outbound, Report, ReportSink
from dakghar.core.message import ErrorCode
from dakghar.observability.logging import get_logger
from dakghar.smpp import pdu as p
from dakghar.smpp.client import SmppClient, SmppError
from dakghar.smpp.coding import DataCoding, decode_text, encode_text
from dakghar.smpp.concat import Method, Reassembler, split
from dakghar.smpp.dlr import ReceiptStat, is_receipt, parse_receipt
from dakghar.smpp.errors import EncodeError
from dakghar.smpp.pdu import CommandStatus as S
from dakghar.smpp.tlv import dlt_tlvs

log = get_logger("dakghar.connectors.smpp")
# Under fleet bind leases, bind i of a connector is first asked for i times this after start.
BIND_SPREAD_SECONDS = 10.0

_TEMPORARY = {S.ESME_RSYSERR, S.ESME_RX_T_APPN}
_SLOW_DOWN = {S.ESME_RTHROTTLED, S.ESME_RMSGQFUL}
_STATUS = {
    ReceiptStat.DELIVRD: "delivered",
    ReceiptStat.UNDELIV: "undelivered",
    ReceiptStat.EXPIRED: "expired",
    ReceiptStat.REJECTD: "rejected",
    ReceiptStat.DELETED: "failed",
    ReceiptStat.UNKNOWN: "failed",
}
_ERROR_FOR = {
    "undelivered": ErrorCode.UNDELIVERED,
    "expired": ErrorCode.EXPIRED,
    "rejected": ErrorCode.CARRIER_REJECTED,
    "failed": ErrorCode.UNDELIVERED,
}
_METHODS = {"udh": Method.UDH8, "udh16": Method.UDH16, "sar": Method.SAR, "payload": Method.PAYLOAD}
InboundHandler = Callable[[str, str, str], Awaitable[None]]  # (from, to, text)


@dataclass(frozen=True, slots=True)
class SmppConnectorConfig:
    """One SMSC as ``[[connectors]]`` describes it."""

    name: str
    host: str
    port: int
    system_id: str
    password: str = ""
    system_type: str = ""
    bind: str = "transceiver"  # transceiver | pair (a transmitter and a receiver)
    binds: int = 1
    window: int = 64
    rate: float = 0.0  # submits per second the contract allows; 0 = no limit
    request_timeout: float = 10.0
    bind_timeout: float = 10.0  # connect + bind_resp must come within this, or we reconnect
    enquire_link_interval: float = 30.0
    source_ton: int = 5  # alphanumeric sender ids, as Indian headers are
    source_npi: int = 0
    dest_ton: int = 1  # international
    dest_npi: int = 1  # E.164
    registered_delivery: bool = True
    long_messages: str = "udh"  # udh | udh16 | sar | payload
    dlt: bool = False
    tls: bool = False  # SMPP over TLS
    ca_file: str | None = None  # CA bundle (PEM) to verify the SMSC; default: the system's
    tls_verify: bool = True  # check the SMSC's chain and host name

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context of ``tls``/``ca_file``/``tls_verify`` (None without TLS).

        Raises ValueError naming ``ca_file`` when it cannot be read or holds no certificate.
        """
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        except FileNotFoundError:
            raise ValueError(f"ca_file {self.ca_file}: no such file") from None
        except ssl.SSLError:
            raise ValueError(f"ca_file {self.ca_file}: no PEM certificate in it") from None
        except OSError as exc:
            raise ValueError(f"ca_file {self.ca_file}: {exc.strerror or exc}") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    @classmethod
    def from_settings(cls, table: Mapping[str, Any]) -> SmppConnectorConfig:
        """Validate a ``[[connectors]]`` table; the password may come from ``password_env``."""
        values = {k: v for k, v in table.items() if k not in ("type", "password_env")}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown keys {unknown}; known: {sorted(known | {'password_env'})}")
        env = table.get("password_env")
        if env is not None:
            if "password" in table:
                raise ValueError("give password or password_env, not both")
            if not isinstance(env, str) or env not in os.environ:
                raise ValueError(f"password_env names {env!r}, which is not set")
            values["password"] = os.environ[env]
        for required in ("name", "host", "port", "system_id"):
            if required not in values:
                raise ValueError(f"{required!r} is required")
        try:
            config = cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc
        if config.bind not in ("transceiver", "pair"):
            raise ValueError("bind must be 'transceiver' or 'pair'")
        if config.long_messages not in _METHODS:
            raise ValueError(f"long_messages must be one of {sorted(_METHODS)}")
        if not 0 < config.port < 65536 or config.binds < 1 or config.window < 1:
            raise ValueError("port must be 1-65535, binds and window >= 1")
        for name in ("request_timeout", "bind_timeout"):
            value = getattr(config, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        for name, limit in _CSTRING_LIMITS.items():
            _check_cstring(name, getattr(config, name), limit)
        for name in ("tls", "tls_verify"):
            if not isinstance(getattr(config, name), bool):
                raise ValueError(f"{name} must be true or false")
        if config.ca_file is not None and not isinstance(config.ca_file, str):
            raise ValueError("ca_file must be a path to a PEM CA bundle")
        if not config.tls and ("ca_file" in values or "tls_verify" in values):
            raise ValueError("ca_file and tls_verify apply only with tls = true")
        config.tls_context()  # an unreadable ca_file is refused now, not at every bind
        return config


# SMPP 3.4 section 4.1 (bind): C-Octet Strings of at most this many octets before the NUL. A value
# over the limit cannot be encoded, so it is refused here, at start-up, rather than on every bind.
_CSTRING_LIMITS = {"system_id": 15, "password": 8, "system_type": 12}


def _check_cstring(name: str, value: object, limit: int) -> None:
    """Refuse a bind field the codec could not put on the wire; the message never shows it."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    try:
        raw = value.encode("latin-1")  # what the codec sends (SMPP strings are ASCII)
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be ASCII (SMPP 3.4 C-Octet String)") from None
    if b"\x00" in raw:
        raise ValueError(f"{name} must not contain a NUL character")
    if len(raw) > limit:
        raise ValueError(
            f"{name} is {len(raw)} octets; SMPP 3.4 (section 4.1) allows at most {limit}"
        )


class SmppConnector:
    """The dispatcher's view of one SMSC."""

    def __init__(
        self, name: str, config: SmppConnectorConfig, on_inbound: InboundHandler | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.rate_per_second = config.rate
        self.max_in_flight = config.binds * config.window
        self.on_inbound = on_inbound
        self._tls = config.tls_context()  # one context for every bind
        if config.tls and not config.tls_verify:
            log.warning("smpp tls verification is off", connector=name)
        self.reports = 0
        self._on_report: ReportSink | None = None
        self._reassembler = Reassembler()
        self._refs = itertools.count(int.from_bytes(os.urandom(2), "big"))
        self.senders: list[SmppClient] = []
        self.clients: list[SmppClient] = []
        # The fleet's bind slots (``coord.base.BindLeases``, Redis): when set, ``binds`` is the
        # contract's number for the whole fleet, and each bind opens only while this process
        # holds a lease on one of its slots. None: this process opens every bind.
        self.leases: Any = None
        self._holders: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        for i in range(config.binds):
            self._add_bind(i)

    def _add_bind(self, i: int) -> list[SmppClient]:
        name, config = self.name, self.config
        if config.bind == "pair":
            tx = self._client(f"{name}#{i}tx", "transmitter")
            rx = self._client(f"{name}#{i}rx", "receiver")
            self.senders.append(tx)
            self.clients += [tx, rx]
            return [tx, rx]
        trx = self._client(f"{name}#{i}", "transceiver")
        self.senders.append(trx)
        self.clients.append(trx)
        return [trx]

    def _drop_bind(self, clients: list[SmppClient]) -> None:
        for c in clients:
            if c in self.senders:
                self.senders.remove(c)
            if c in self.clients:
                self.clients.remove(c)

    async def _hold(self, i: int) -> None:
        """Keep bind ``i`` open while a lease on one of the fleet's slots is held."""
        from dakghar.coord.leases import BindLease

        # The first bind at once, later ones after the rest of the fleet had a chance to take
        # a first bind of its own: the slots spread over the processes.
        await asyncio.sleep(i * BIND_SPREAD_SECONDS)
        owner = f"{socket.gethostname()}/{os.getpid()}/{id(self):x}/{i}"
        lease = BindLease(self.leases, self.name, self.config.binds, owner)
        while not self._stopped.is_set():
            try:
                slot = await lease.acquire()
            except Exception:  # the coordinator is away: no slot, no bind
                slot = None
            if slot is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), random.uniform(2.0, 4.0))
                continue
            clients = self._add_bind(i)
            for client in clients:
                await client.start()
            stop = asyncio.ensure_future(self._stopped.wait())
            lost = asyncio.ensure_future(lease.lost.wait())
            await asyncio.wait({stop, lost}, return_when=asyncio.FIRST_COMPLETED)
            for fut in (stop, lost):
                fut.cancel()
            if lease.lost.is_set():
                log.warning("bind slot lost; closing the bind", connector=self.name, bind=i)
            self._drop_bind(clients)
            for client in clients:
                await client.stop()
            await lease.release()

    def _client(self, label: str, mode: str) -> SmppClient:
        c = self.config
        return SmppClient(
            c.host,
            c.port,
            c.system_id,
            c.password,
            system_type=c.system_type,
            mode=mode,
            window=c.window,
            request_timeout=c.request_timeout,
            bind_timeout=c.bind_timeout,
            enquire_link_interval=c.enquire_link_interval,
            on_deliver=self._deliver,
            name=label,
            ssl=self._tls,
        )

    # -- Connector ---------------------------------------------------------------------------

    async def start(self, on_report: ReportSink) -> None:
        self._on_report = on_report
        if self.leases is not None:
            self.senders.clear()  # every bind opens under a lease (``_hold``)
            self.clients.clear()
            self._holders = [
                asyncio.create_task(self._hold(i), name=f"smpp-lease-{self.name}-{i}")
                for i in range(self.config.binds)
            ]
            return
        for client in self.clients:
            await client.start()

    async def stop(self) -> None:
        self._stopped.set()
        if self._holders:
            await asyncio.wait(self._holders, timeout=15)
            self._holders = []
        for client in list(self.clients):
            await client.stop()

    @property
    def ready(self) -> bool:
        return any(s.can_submit for s in self.senders)

    def state(self) -> dict[str, Any]:
        return {
            "type": "smpp",
            "binds": [c.state() for c in self.clients],
            "window_in_use": sum(s.window_in_use for s in self.senders),
            "reports": self.reports,
        }

    async def submit(self, message: Outbound) -> Accepted:
        sender = self._pick()
        fields, tlvs, payload = self._template(message)
        method = _METHODS[self.config.long_messages]
        parts = split(payload, fields["data_coding"], method, ref=next(self._refs) & 0xFFFF)
        ids: list[str] = []
        for i, part in enumerate(parts):
            pdu = p.SubmitSm(
                **fields,
                short_message=part.short_message,
                esm_class=part.esm_class,
                tlvs={**tlvs, **part.tlvs},
            )
            try:
                response = await sender.submit(pdu)
            except EncodeError as exc:
                # A field our codec cannot put on the wire (an over-long source_addr, say): the
                # SMSC never saw it and never will, so it fails for good instead of escaping
                # to the dispatcher as an unexpected error. The message names field and size.
                raise ConnectorError(
                    f"submit_sm cannot be encoded: {exc}",
                    temporary=False,
                    error_code=ErrorCode.CARRIER_REJECTED,
                    maybe_sent=i > 0,
                ) from exc
            except SmppError as exc:
                # A part after the first may only fail once the earlier ones are with the SMSC.
                raise ConnectorError(
                    str(exc),
                    temporary=True,
                    error_code=ErrorCode.CONNECTOR_UNAVAILABLE,
                    maybe_sent=exc.maybe_sent or i > 0,
                ) from exc
            status = response.command_status
            if status != 0:
                raise _refusal(status, partial=i > 0)
            ids.append(getattr(response, "message_id", "") or "")
        return Accepted(provider_ids=ids, parts=len(parts))

    # -- building submit_sm ------------------------------------------------------------------

    def _pick(self) -> SmppClient:
        ready = [s for s in self.senders if s.can_submit]
        if not ready:
            raise ConnectorError(
                f"{self.name}: no bind is up",
                temporary=True,
                error_code=ErrorCode.CONNECTOR_UNAVAILABLE,
            )
        return min(ready, key=lambda s: s.window_in_use)

    def _template(self, message: Outbound) -> tuple[dict[str, Any], dict[int, p.TlvValue], bytes]:
        """The fields every part's submit_sm shares, its TLVs, and the encoded text: the
        fields once as keywords, not a template PDU copied field by field for each part."""
        c = self.config
        coding = DataCoding.UCS2 if message.encoding == "UCS-2" else DataCoding.SMSC_DEFAULT
        payload = encode_text(message.body, coding)
        sender = message.sender or ""
        tlvs: dict[int, p.TlvValue] = {}
        if c.dlt and message.entity_id and message.template_id:
            tlvs.update(dlt_tlvs(message.entity_id, message.template_id))
        numeric = sender.lstrip("+").isdigit()
        fields = {
            "source_addr_ton": 1 if numeric else c.source_ton,
            "source_addr_npi": 1 if numeric else c.source_npi,
            "source_addr": sender.lstrip("+"),
            "dest_addr_ton": c.dest_ton,
            "dest_addr_npi": c.dest_npi,
            "destination_addr": message.to.lstrip("+"),
            "validity_period": relative_time(message.validity_seconds),
            "registered_delivery": 1 if (c.registered_delivery and message.want_report) else 0,
            "data_coding": int(coding),
        }
        return fields, tlvs, payload

    # -- inbound -----------------------------------------------------------------------------

    async def _deliver(self, pdu: p.DeliverSm | p.DataSm) -> int:
        if is_receipt(pdu):
            raw = pdu.short_message if isinstance(pdu, p.DeliverSm) else b""
            receipt = parse_receipt(raw, pdu.tlvs)
            if receipt is None:
                return 0
            status = _STATUS.get(receipt.stat)
            if status is None:  # ACCEPTD, ENROUTE: not final
                return 0
            # Receipt dates have minute precision (YYMMDDhhmm): for a report that arrives at once
            # its arrival time is the better figure; a late one (parked while we were unbound)
            # keeps the carrier's time.
            at = None
            if receipt.done_date is not None:
                done = int(receipt.done_date.timestamp() * 1000)
                if time.time() * 1000 - done > 120_000:
                    at = done
            report = Report(
                connector=self.name,
                provider_id=receipt.id,
                status=status,
                error_code=None if status == "delivered" else _ERROR_FOR[status],
                detail=None if receipt.err in (None, "000") else f"err:{receipt.err}",
                at=at,
            )
            self.reports += 1
            if self._on_report is not None:
                await self._on_report(report)
            return 0
        if isinstance(pdu, p.DeliverSm):
            body = self._reassembler.feed(pdu, time.monotonic())
            if body is None:
                return 0  # a part of a longer message; acknowledged, kept until complete
            text = decode_text(body, pdu.data_coding)
            log.info("inbound message", connector=self.name, length=len(text))
            if self.on_inbound is not None:
                await self.on_inbound("+" + pdu.source_addr.lstrip("+"), pdu.destination_addr, text)
        return 0


def _refusal(status: int, *, partial: bool) -> ConnectorError:
    try:
        name = f"{S(status).name} (0x{status:02X})"
    except ValueError:
        name = f"0x{status:08X}"
    detail = f"SMSC answered {name}"
    if status in _SLOW_DOWN:
        return ConnectorError(detail, temporary=True, error_code=ErrorCode.CONNECTOR_UNAVAILABLE,
                              slow_down=True, maybe_sent=partial)  # fmt: skip
    if status in _TEMPORARY:
        return ConnectorError(detail, temporary=True, error_code=ErrorCode.CONNECTOR_UNAVAILABLE,
                              maybe_sent=partial)  # fmt: skip
    code = ErrorCode.INVALID_NUMBER if status == S.ESME_RINVDSTADR else ErrorCode.CARRIER_REJECTED
    return ConnectorError(detail, temporary=False, error_code=code, maybe_sent=partial)


@functools.lru_cache(maxsize=4096)  # messages sent in the same second share their validity
def relative_time(seconds: int) -> str:
    """SMPP relative time format ``YYMMDDhhmmss000R`` for a duration (validity period)."""
    seconds = max(1, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    years, days = divmod(days, 365)
    months, days = divmod(days, 30)
    return f"{years:02d}{months:02d}{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"
