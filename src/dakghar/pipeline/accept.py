"""The accept step: turn validated requests into durable, queued messages.

It composes each message (``core.compose``), applies account-level gates (kill switch,
scheduling bounds), writes the batch atomically with the credit debit through the store's group
commit, and tells whoever listens (the dispatcher, in the delivery pipeline) that work is waiting.
The API, OTP and campaigns all accept messages through here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dakghar.compliance.dnd import FILE_NAME as DND_FILE
from dakghar.compliance.dnd import list_dir
from dakghar.compliance.hours import next_window
from dakghar.compliance.policy import Compliance
from dakghar.core.compose import Composed, compose
from dakghar.core.ids import new_id
from dakghar.core.message import MessageType, Status
from dakghar.core.numbers import mask
from dakghar.errors import DakgharError, DndBlocked, SendingPaused, ValidationError
from dakghar.pipeline.dnd import DndRegistry
from dakghar.pipeline.switches import Switchboard
from dakghar.store.base import AcceptOutcome, Account, MessageRow, ResponseRenderer, Store, now_ms

# A schedule a little in the past is the sender's clock running behind ours: send it now. More
# than this is a mistake (a year 0001 default, a stale job), refused rather than sent at once.
MAX_SCHEDULE_BEHIND_MS = 5 * 60 * 1000
MAX_SCHEDULE_AHEAD_MS = 60 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Draft:
    """What the application asked for, before validation."""

    to: str
    body: str
    sender: str | None = None
    type: str = "transactional"
    template_id: str | None = None
    callback_url: str | None = None
    reference: str | None = None
    schedule_at: datetime | None = None
    validity_seconds: int = 86400


Listener = Callable[[Sequence[MessageRow]], None]


def dnd_path(store: Store, data_dir: str | None = None) -> Path | None:
    """Where the imported DND list lives (``compliance.dnd.list_dir``, as ``dnd import``)."""
    where = list_dir(store, data_dir)
    return where / DND_FILE if where is not None else None


class Acceptor:
    """Composes, writes and announces messages."""

    def __init__(
        self,
        store: Store,
        switches: Switchboard | None = None,
        dnd: DndRegistry | None = None,
        compliance: Compliance | None = None,
        *,
        data_dir: str | None = None,
    ) -> None:
        self.store = store
        self.switches = switches
        self.compliance = compliance or Compliance(store)
        self.dnd = dnd or DndRegistry(path=dnd_path(store, data_dir))
        if self.dnd.suppressed is None:
            self.dnd.suppressed = self.compliance.suppressed
        self.listeners: list[Listener] = []

    def check_open(self, account: Account) -> None:
        """Raise :class:`SendingPaused` when a kill switch is on (global or the account's).

        A fast refusal from this process's copy of the switches; the store checks them again
        inside the accept transaction, so a switch flipped by another process (the CLI) holds
        from the very next request.
        """
        if self.switches is not None and self.switches.global_paused:
            raise SendingPaused.everyone()
        if account.sending_paused or (
            self.switches is not None and self.switches.account_paused(account.id)
        ):
            raise SendingPaused.account()

    async def prepare(self, account: Account) -> None:
        """Have the account's compliance rules at hand for :meth:`build` (await it first).

        Reads them only when this process's copy is missing or older than the refresh interval,
        so a request normally costs nothing here; ``build`` itself never reads the database.
        """
        await self.compliance.prepare(account.id)

    def build(self, draft: Draft, account: Account, *, sandbox: bool, now: int) -> MessageRow:
        """Validate and price one draft into a row ready to write (raises DakgharError).

        Call :meth:`prepare` for the account first when on the event loop.
        """
        mtype = MessageType(draft.type)
        composed: Composed = compose(
            to=draft.to,
            body=draft.body,
            sender=draft.sender or account.default_sender,
            default_region=account.default_region,
            allowed_countries=account.allowed_country_set,
            segment_limit=account.segment_limit,
            price_milli_per_segment=account.price_milli_per_segment,
            smart_encoding=account.smart_encoding,
            charge=not sandbox,
        )
        cleared = self.compliance.clear(
            account,
            sender=composed.sender,
            body=composed.text,
            mtype=mtype,
            country=composed.number.country,
        )
        if self.dnd.blocks(
            composed.number.e164,
            mtype,
            sandbox=sandbox,
            account_id=account.id,
            category=cleared.category,
        ):
            e164 = composed.number.e164
            opted_out = self.dnd.suppressed is not None and self.dnd.suppressed(account.id, e164)
            where = (
                "opted out of this account's promotional messages (replied STOP)"
                if opted_out
                else "is on the do-not-disturb registry"
            )
            raise DndBlocked(
                f"{mask(e164)} {where}; promotional messages to it are not allowed "
                "(OTP and transactional messages are)",
                errors=[{"field": "to", "code": "dnd_blocked"}],
            )
        schedule_ms: int | None = None
        if draft.schedule_at is not None:
            if draft.schedule_at.tzinfo is None:
                raise ValidationError(
                    "schedule_at must carry a time zone, e.g. 2026-11-24T10:00:00Z",
                    errors=[{"field": "schedule_at", "code": "validation_error"}],
                )
            schedule_ms = int(draft.schedule_at.astimezone(UTC).timestamp() * 1000)
            if schedule_ms > now + MAX_SCHEDULE_AHEAD_MS:
                raise ValidationError(
                    "schedule_at is more than 60 days ahead",
                    errors=[{"field": "schedule_at", "code": "validation_error"}],
                )
            if schedule_ms < now - MAX_SCHEDULE_BEHIND_MS:
                raise ValidationError(
                    "schedule_at is in the past (more than 5 minutes ago); leave it out to "
                    "send now",
                    errors=[{"field": "schedule_at", "code": "validation_error"}],
                )
            if schedule_ms <= now + 1000:
                schedule_ms = None  # due now (or a moment ago: clock skew): queue it at once
        if mtype is MessageType.PROMOTIONAL and composed.number.country == "IN" and not sandbox:
            opens = next_window(schedule_ms or now)  # TRAI: promotions only 09:00-21:00 IST
            if opens is not None:
                schedule_ms = opens
        start = schedule_ms or now
        return MessageRow(
            id=new_id("msg"),
            account_id=account.id,
            to_number=composed.number.e164,
            sender=composed.sender,
            type=mtype.value,
            lane=int(mtype.lane),
            status=(Status.SCHEDULED if schedule_ms else Status.QUEUED).value,
            error_code=None,
            error_detail=None,
            body=composed.text,
            segments=composed.segments,
            encoding=composed.encoding.value,
            price_milli=composed.price_milli,
            country=composed.number.country,
            carrier=composed.number.carrier,
            region=composed.number.region,
            connector=None,
            provider_message_id=None,
            reference=draft.reference,
            callback_url=draft.callback_url or account.callback_url,
            template_id=cleared.template_id or draft.template_id,
            sandbox=sandbox,
            schedule_at=schedule_ms,
            validity_seconds=draft.validity_seconds,
            expires_at=start + draft.validity_seconds * 1000,
            attempts=0,
            next_attempt_at=start,
            route_step=0,
            step_attempts=0,
            lease_until=None,
            created_at=now,
            submitted_at=None,
            delivered_at=None,
            updated_at=now,
            entity_id=cleared.entity_id,
        )

    def build_many(
        self, drafts: Sequence[Draft | DakgharError], account: Account, *, sandbox: bool
    ) -> tuple[list[tuple[int, MessageRow]], list[tuple[int, DakgharError]]]:
        """Build every draft; an entry that is already an error, or fails, is reported by index."""
        now = now_ms()
        rows: list[tuple[int, MessageRow]] = []
        failed: list[tuple[int, DakgharError]] = []
        for i, draft in enumerate(drafts):
            if isinstance(draft, DakgharError):
                failed.append((i, draft))
                continue
            try:
                rows.append((i, self.build(draft, account, sandbox=sandbox, now=now)))
            except DakgharError as exc:
                failed.append((i, exc))
        return rows, failed

    async def write(
        self,
        account: Account,
        rows: Sequence[MessageRow],
        *,
        sandbox: bool,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        render: ResponseRenderer | None = None,
    ) -> AcceptOutcome:
        """Durably write ``rows`` (debiting unless sandbox) and announce the accepted ones."""
        outcome = await self.store.accept_messages(
            account.id,
            rows,
            charge=not sandbox,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            render=render,
        )
        if outcome.accepted:
            for listener in self.listeners:
                listener(outcome.accepted)
        return outcome
