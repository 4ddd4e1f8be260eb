"""Bulk campaigns: a CSV of recipients becomes validated, scrubbed, paced messages.

The CSV is read row by row from a file (the upload was spooled to disk), never whole. Each row
goes through the same accept step as a single message (``pipeline.accept.Acceptor``: number,
body, DLT, DND, promotional hours), then duplicates are dropped, and accepted messages are
written in chunks of ``CHUNK`` through the store's group commit; each chunk's write yields to the
event loop, so an ingest never stalls other requests for long.

Pacing: with ``rate_per_second`` the i-th valid message becomes due ``i / rate`` seconds after
the start, so the campaign trickles into its lane (promotional or transactional, by its type).
The dispatcher is fair across accounts inside a lane and OTP has its own lane, so a campaign
never starves OTPs or other accounts whatever its size.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Protocol

from dakghar.campaigns.records import FAILED
from dakghar.compliance import records as compliance_records
from dakghar.compliance.hours import next_window
from dakghar.compliance.templates import VAR
from dakghar.core.ids import new_id
from dakghar.core.message import MessageType, Status
from dakghar.errors import Conflict, DakgharError, DndBlocked, NotFound, ValidationError
from dakghar.observability.logging import get_logger
from dakghar.pipeline.accept import MAX_SCHEDULE_AHEAD_MS, Acceptor, Draft
from dakghar.store.base import Account, MessageRow, StatusChange, Store, now_ms
from dakghar.store.campaigns import ENDED, STAGE_SHIFT, WAITING, CampaignRow, CampaignStore, Reject

log = get_logger(__name__)

CHUNK = 2000
PROGRESS_EVERY_S = 0.5
STALE_MS = 30_000  # an ingest writes its counts every PROGRESS_EVERY_S; silent this long = dead
YIELD_EVERY = 250  # rows validated between two turns of the event loop (~10 ms)
MAX_RATE = 10_000
PHONE_COLUMNS = ("phone", "to", "number", "mobile", "msisdn")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_ \-]*)\}")
_INDIAN_MOBILE = re.compile(r"(?:\+?91|0)?([6-9][0-9]{9})")


def canonical(phone: str, default_region: str) -> str:
    """``+91XXXXXXXXXX`` for the ways Indian mobiles are written in lists, else ``phone``.

    The number parser has a fast path for that canonical form; lists of Indian customers are
    mostly bare 10-digit numbers, and canonicalising them first makes ingest several times faster.
    """
    if default_region == "IN":
        m = _INDIAN_MOBILE.fullmatch(phone)
        if m is not None:
            return "+91" + m[1]
    return phone


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """What the application asked for (the form fields of ``POST /v1/campaigns``)."""

    body: str | None = None
    sender: str | None = None
    type: str = "promotional"
    template_id: str | None = None
    name: str | None = None
    schedule_at: datetime | None = None
    rate_per_second: int | None = None


@dataclass(slots=True)
class CampaignView:
    """A campaign with its live progress (API.md "Campaigns")."""

    id: str
    name: str | None
    status: str
    type: str
    sender: str | None
    total: int
    valid: int
    invalid: int
    duplicates: int
    dnd_filtered: int
    queued: int
    sent: int
    delivered: int
    failed: int
    canceled: int
    rate_per_second: int | None
    schedule_at: int | None
    created_at: int


Renderer = Callable[[list[str]], str]


def renderer(body: str, columns: list[str]) -> Renderer:
    """A function filling ``{column}`` placeholders of ``body`` from a CSV row.

    Unknown columns are refused up front, so a typo fails the request, not every row.
    """
    index = {c.strip().lower(): i for i, c in enumerate(columns)}
    parts: list[str | int] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(body):
        key = m.group(1).strip().lower()
        if key not in index:
            raise ValidationError(
                f"the body uses {{{m.group(1)}}} but the CSV has no such column",
                errors=[{"field": "body", "code": "validation_error"}],
            )
        parts += [body[pos : m.start()], index[key]]
        pos = m.end()
    parts.append(body[pos:])

    def render(row: list[str]) -> str:
        return "".join(p if isinstance(p, str) else (row[p] if p < len(row) else "") for p in parts)

    return render


def _template_renderer(text: str, columns: list[str], phone: int) -> Renderer:
    """Fill a DLT template's ``{#var#}`` slots, in order, from the non-phone columns."""
    fill = [i for i in range(len(columns)) if i != phone]
    pieces = text.split(VAR)
    if len(pieces) - 1 > len(fill):
        raise ValidationError(
            f"template needs {len(pieces) - 1} variables; the CSV has {len(fill)} value columns"
        )

    def render(row: list[str]) -> str:
        out = [pieces[0]]
        for n, piece in enumerate(pieces[1:]):
            out += [row[fill[n]] if fill[n] < len(row) else "", piece]
        return "".join(out)

    return render


def pace(msg: MessageRow, offset: int, skipped: int, *, sandbox: bool) -> int:
    """Make ``msg`` due ``offset + skipped`` ms after its start; returns the new ``skipped``.

    A live promotional message to an Indian number whose turn falls outside 09:00-21:00 IST is
    held (``scheduled``) until the window opens, and every later row is moved by the same skip
    (and held too), so the campaign goes on at its rate the next morning instead of bursting
    at 09:00.
    """
    base = msg.schedule_at if msg.schedule_at is not None else (msg.next_attempt_at or 0)
    due = base + offset + skipped
    if msg.type == MessageType.PROMOTIONAL.value and msg.country == "IN" and not sandbox:
        opens = next_window(due)
        if opens is not None:
            skipped, due = skipped + opens - due, opens
        if skipped and msg.schedule_at is None:
            msg.status, msg.schedule_at = Status.SCHEDULED.value, base
    delta = due - base
    msg.expires_at += delta
    msg.next_attempt_at = due
    if msg.schedule_at is not None:
        msg.schedule_at += delta
    return skipped


def _check_spec(spec: CampaignSpec) -> None:
    if spec.type not in (MessageType.PROMOTIONAL.value, MessageType.TRANSACTIONAL.value):
        raise ValidationError("type must be promotional or transactional")
    if spec.rate_per_second is not None and not 1 <= spec.rate_per_second <= MAX_RATE:
        raise ValidationError(f"rate_per_second must be between 1 and {MAX_RATE}")
    if not spec.body and not spec.template_id:
        raise ValidationError("send a body (with {column} placeholders) or a template_id")
    if spec.schedule_at is not None:
        if spec.schedule_at.tzinfo is None:
            raise ValidationError("schedule_at must carry a time zone")
        if spec.schedule_at.timestamp() * 1000 > now_ms() + MAX_SCHEDULE_AHEAD_MS:
            raise ValidationError("schedule_at is more than 60 days ahead")


def stage(msg: MessageRow) -> None:
    """Move a paced message ``STAGE_SHIFT`` ahead: out of reach until its ingest commits."""
    msg.next_attempt_at = (msg.next_attempt_at or 0) + STAGE_SHIFT
    msg.expires_at += STAGE_SHIFT
    if msg.schedule_at is not None:
        msg.schedule_at += STAGE_SHIFT


class _Stopped(Exception):
    """The campaign was canceled (or failed by a recovery) while its rows were being read."""


@dataclass(slots=True)
class _Ingest:
    """Counters of one running ingest."""

    total: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    dnd: int = 0
    reported: float = 0.0  # time.monotonic() of the last progress written

    def fields(self) -> dict[str, int]:
        """The campaign row's columns for these counts."""
        return {
            "total": self.total,
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "dnd_filtered": self.dnd,
        }


@dataclass(slots=True)
class _Job:
    """What a background ingest needs: the request, the open CSV and how to read its rows."""

    account: Account
    spec: CampaignSpec
    row: CampaignRow
    reader: Any  # the csv reader over ``text`` (typeshed's _reader is private)
    text: io.TextIOWrapper
    phone: int
    render: Renderer
    sandbox: bool
    now: int


class CampaignBackend(Store, CampaignStore, Protocol):
    """What the service needs of a store: the campaigns area, and the lifecycle moves that
    cancel (and refund) a campaign's waiting messages."""


class CampaignService:
    """Create, follow, pause, resume and cancel campaigns."""

    def __init__(
        self, store: CampaignBackend, acceptor: Acceptor, *, clock: Callable[[], int] = now_ms
    ) -> None:
        self.store = store
        self.acceptor = acceptor
        self.clock = clock
        # Ingests running in this process, by campaign id: a recovery leaves these alone.
        self._live: dict[str, asyncio.Task[None]] = {}
        self._recheck: asyncio.Task[None] | None = None

    async def create(
        self, account: Account, spec: CampaignSpec, upload: IO[bytes], *, sandbox: bool
    ) -> CampaignView:
        """Ingest the CSV ``upload`` into a new campaign and return once it has committed."""
        view = await self.start(account, spec, upload, sandbox=sandbox)
        task = self._live.get(view.id)
        if task is not None:
            await asyncio.shield(task)
        return await self.get(account, view.id)

    async def start(
        self, account: Account, spec: CampaignSpec, upload: IO[bytes], *, sandbox: bool
    ) -> CampaignView:
        """Check the request and the CSV's header, then ingest the rows in the background.

        Returns the new campaign at once (``ingesting``, live counts). The background ingest
        owns ``upload`` from here on and closes it. Errors found before that (bad fields, no
        phone column, unknown placeholder) are raised, and nothing is created.
        """
        _check_spec(spec)
        self.acceptor.check_open(account)
        await self.acceptor.prepare(account)  # rows are checked later, on the loop, without reads
        text = io.TextIOWrapper(upload, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.reader(text)
        try:
            columns = next(reader, None)
        except csv.Error as exc:
            raise ValidationError(f"the CSV's header row is malformed: {exc}") from None
        if not columns:
            raise ValidationError("the CSV is empty; its first row names the columns")
        lowered = [c.strip().lower() for c in columns]
        phone = next((lowered.index(c) for c in PHONE_COLUMNS if c in lowered), None)
        if phone is None:
            raise ValidationError("the CSV needs a 'phone' column")
        render = await self._renderer(account, spec, columns, phone)
        now = self.clock()
        cid = new_id("cmp")
        start = (
            int(spec.schedule_at.astimezone(UTC).timestamp() * 1000) if spec.schedule_at else now
        )
        row = CampaignRow(
            cid, account.id, spec.name, spec.type, spec.sender, "ingesting",
            spec.rate_per_second, start if start > now else None, 0, 0, 0, 0, 0, None, now, now,
        )  # fmt: skip
        await self.store.insert_campaign(row)
        job = _Job(account, spec, row, reader, text, phone, render, sandbox, now)
        task = asyncio.create_task(self._run(job), name=f"dakghar-ingest-{cid}")
        self._live[cid] = task
        task.add_done_callback(lambda _: self._live.pop(cid, None))
        log.info("campaign_ingesting", campaign_id=cid, account_id=account.id)
        return await self.get(account, cid)

    async def _run(self, job: _Job) -> None:
        """The background ingest: stage every row, commit, then release the staged rows."""
        cid = job.row.id
        try:
            try:
                counts = await self._ingest(job)
            finally:
                job.text.close()  # deletes the spooled upload
            status = "scheduled" if job.row.schedule_at else "running"
            if not await self.store.commit_campaign_ingest(cid, status, **counts.fields()):
                raise _Stopped
            log.info("campaign_created", campaign_id=cid, account_id=job.account.id,
                     total=counts.total, valid=counts.valid)  # fmt: skip
            await self._release(cid)
        except _Stopped:  # canceled (maybe from another process) while ingesting
            log.info("campaign_ingest_stopped", campaign_id=cid)
            await self._cancel_waiting(cid)
        except asyncio.CancelledError:  # shutdown: the next start's recovery fails it
            raise
        except Exception as exc:
            # csv.Error (a NUL byte, a field over csv.field_size_limit()) or a store failure:
            # the 201 has been sent, so the campaign says it failed; nothing of it is sent.
            where = f" at line {job.reader.line_num}" if isinstance(exc, csv.Error) else ""
            log.warning("campaign_ingest_failed", campaign_id=cid, reason=f"{exc}{where}")
            # Rows first, so that a campaign seen ``failed`` has nothing waiting any more.
            await self._cancel_waiting(cid)
            await self.store.end_campaign(cid, "failed", only_if="ingesting")

    async def _release(self, cid: str) -> None:
        after = ""
        while True:
            moved, after = await self.store.release_staged(cid, after)
            if not moved:
                return
            await asyncio.sleep(0)  # other writes (OTPs) go between the chunks

    async def recover(self, *, stale_ms: int = STALE_MS) -> int:
        """End what a crashed ingest left behind; how many campaigns were failed.

        A campaign ``ingesting`` with no live ingest (none here, and no heartbeat from another
        process for ``stale_ms``) is ``failed``, its staged rows canceled and refunded. One that
        had committed but still has staged rows (a crash while releasing) is rolled forward.
        Campaigns still beating are looked at again once they could have gone stale.
        """
        failed = 0
        again = False
        now = now_ms()
        for row in await self.store.campaigns_with_status(("ingesting",)):
            if row.id in self._live:
                continue
            if row.updated_at > now - stale_ms:
                again = True  # maybe a CLI ingest in another process: look again later
                continue
            if await self.store.end_campaign(row.id, "failed", only_if="ingesting"):
                log.warning("campaign_ingest_orphaned", campaign_id=row.id)
                failed += 1
            await self._cancel_waiting(row.id)
        for row in await self.store.campaigns_with_status(("running", "scheduled", "paused")):
            if row.id not in self._live and await self.store.campaign_has_staged(row.id):
                await self._release(row.id)
        if again and (self._recheck is None or self._recheck.done()):
            self._recheck = asyncio.create_task(self._recover_later(stale_ms))
        return failed

    async def _recover_later(self, stale_ms: int) -> None:
        await asyncio.sleep(stale_ms / 1000 + 1)
        await self.recover(stale_ms=stale_ms)

    async def close(self) -> None:
        """Stop the ingests of this process; those that had not committed end ``failed``."""
        live = list(self._live)
        tasks = [*self._live.values(), *([self._recheck] if self._recheck else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # A clean shutdown need not wait for the next start: end the interrupted ingests now
        # (one that had committed keeps its staged rows, released by the next recovery).
        for cid in live:
            with contextlib.suppress(Exception):
                if await self.store.end_campaign(cid, "failed", only_if="ingesting"):
                    await self._cancel_waiting(cid)

    async def _renderer(
        self, account: Account, spec: CampaignSpec, columns: list[str], phone: int
    ) -> Renderer:
        if spec.body:
            return renderer(spec.body, columns)
        registered = (await compliance_records.load(self.store, account.id)).templates
        found = next((t for t in registered if t.id == spec.template_id), None)
        if found is None:
            raise NotFound(f"no DLT template {spec.template_id!r} on this account")
        return _template_renderer(found.text, columns, phone)

    async def _ingest(self, job: _Job) -> _Ingest:
        account, spec, cid, sandbox = job.account, job.spec, job.row.id, job.sandbox
        counts = _Ingest()
        interval = 1000 / spec.rate_per_second if spec.rate_per_second else 0.0
        seen: set[int] = set()
        batch: list[tuple[int, MessageRow]] = []
        rejects: list[Reject] = []
        build = self.acceptor.build
        region = account.default_region
        phone, render, now = job.phone, job.render, job.now
        pending: asyncio.Task[None] | None = None
        skipped = 0  # time skipped over closed promotional hours, added to every later row
        try:
            for line_no, cells in enumerate(job.reader, start=2):
                if len(batch) >= CHUNK or len(rejects) >= CHUNK:  # rejects are bounded too
                    pending = await self._flush(
                        account, cid, batch, rejects, counts, sandbox, pending
                    )
                elif line_no % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let other requests (OTPs) in between rows
                if not cells:
                    continue
                counts.total += 1
                to = cells[phone].strip() if phone < len(cells) else ""
                draft = Draft(
                    to=canonical(to, region),
                    body=render(cells),
                    sender=spec.sender,
                    type=spec.type,
                    template_id=spec.template_id,
                    schedule_at=spec.schedule_at,
                )
                try:
                    msg = build(draft, account, sandbox=sandbox, now=now)
                except DndBlocked:
                    counts.dnd += 1
                    rejects.append(Reject(line_no, to, "dnd_blocked"))
                    continue
                except DakgharError as exc:
                    counts.invalid += 1
                    rejects.append(Reject(line_no, to, exc.code))
                    continue
                key = int(msg.to_number[1:])
                if key in seen:
                    counts.duplicates += 1
                    rejects.append(Reject(line_no, to, "duplicate"))
                    continue
                seen.add(key)
                msg.campaign_id = cid
                skipped = pace(msg, int(counts.valid * interval), skipped, sandbox=sandbox)
                stage(msg)
                counts.valid += 1
                batch.append((line_no, msg))
            await (await self._flush(account, cid, batch, rejects, counts, sandbox, pending))
        except BaseException:
            if pending is not None:  # let the chunk being written land before giving up
                with contextlib.suppress(Exception):
                    await pending
            raise
        return counts

    async def _flush(
        self,
        account: Account,
        cid: str,
        batch: list[tuple[int, MessageRow]],
        rejects: list[Reject],
        counts: _Ingest,
        sandbox: bool,
        pending: asyncio.Task[None] | None,
    ) -> asyncio.Task[None]:
        """Start writing a chunk once the previous one is written (chunks stay in order).

        The write runs on the store's writer thread while the next chunk is being built, so
        reading and validating rows overlaps with committing them.
        """
        if pending is not None:
            await pending
        task = asyncio.create_task(
            self._write_chunk(account, cid, list(batch), list(rejects), counts, sandbox)
        )
        batch.clear()
        rejects.clear()
        return task

    async def _write_chunk(
        self,
        account: Account,
        cid: str,
        batch: list[tuple[int, MessageRow]],
        rejects: list[Reject],
        counts: _Ingest,
        sandbox: bool,
    ) -> None:
        if batch:
            outcome = await self.acceptor.write(account, [m for _, m in batch], sandbox=sandbox)
            for i in outcome.no_credit:
                line_no, msg = batch[i]
                rejects.append(Reject(line_no, msg.to_number, "insufficient_credits"))
                counts.valid -= 1
                counts.invalid += 1
        if rejects:
            await self.store.add_campaign_rejects(cid, rejects)
        # Live counts for GET, and the heartbeat that tells a recovery this ingest is alive;
        # twice a second is live enough and keeps the writer free for the rows themselves.
        now = time.monotonic()
        if now - counts.reported >= PROGRESS_EVERY_S:
            counts.reported = now
            if await self.store.campaign_ingest_progress(cid, **counts.fields()) != "ingesting":
                raise _Stopped

    async def _row(self, account: Account, campaign_id: str) -> CampaignRow:
        row = await self.store.get_campaign(account.id, campaign_id)
        if row is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        return row

    async def get(self, account: Account, campaign_id: str) -> CampaignView:
        """The campaign with live progress; ``completed`` once every message is final."""
        row = await self._row(account, campaign_id)
        # While ingesting every written row is staged, so the row's counts say it all; the
        # GROUP BY over a growing million rows, polled, would slow the ingest itself.
        by = (
            {Status.QUEUED.value: row.valid}
            if row.status == "ingesting"
            else await self.store.campaign_progress(campaign_id)
        )
        waiting = sum(by.get(s, 0) for s in (*WAITING, "sending"))
        status = row.status
        if status in ("running", "scheduled"):
            if waiting == 0 and not by.get(Status.SENT.value):  # every message final
                status = "completed"
            elif status == "scheduled" and (row.schedule_at or 0) <= now_ms():
                status = "running"
        return CampaignView(
            row.id, row.name, status, row.type, row.sender, row.total, row.valid, row.invalid,
            row.duplicates, row.dnd_filtered, waiting, by.get(Status.SENT.value, 0),
            by.get(Status.DELIVERED.value, 0), sum(by.get(s, 0) for s in FAILED),
            by.get(Status.CANCELED.value, 0), row.rate_per_second, row.schedule_at,
            row.created_at,
        )  # fmt: skip

    async def _actionable(self, account: Account, campaign_id: str, action: str) -> CampaignRow:
        """The campaign, unless it has ended (completed, canceled, failed): then 409 conflict.

        ``completed`` is not stored (it is read from the messages), so it is checked here as
        ``get`` reports it; a finished campaign is left exactly as it is.
        """
        row = await self._row(account, campaign_id)
        status = row.status
        if status not in ENDED and status != "ingesting":
            status = (await self.get(account, campaign_id)).status
        if status in (*ENDED, "completed"):
            raise Conflict(f"a {status} campaign cannot be {action}")
        return row

    async def pause(self, account: Account, campaign_id: str) -> CampaignView:
        """Hold every message not yet handed to a carrier."""
        row = await self._actionable(account, campaign_id, "paused")
        if row.status not in ("running", "scheduled"):
            raise Conflict(f"a {row.status} campaign cannot be paused")
        await self.store.hold_campaign(campaign_id, now_ms())
        return await self.get(account, campaign_id)

    async def resume(self, account: Account, campaign_id: str) -> CampaignView:
        """Release held messages, keeping their order and pace."""
        row = await self._actionable(account, campaign_id, "resumed")
        if row.status != "paused" or row.paused_at is None:
            raise Conflict(f"a {row.status} campaign cannot be resumed")
        await self.store.resume_campaign(campaign_id, row.paused_at, now_ms())
        return await self.get(account, campaign_id)

    async def cancel(self, account: Account, campaign_id: str) -> CampaignView:
        """Cancel every waiting message (refunding it); messages already sent go on.

        While ingesting, this stops the ingest: its rows are all still staged, so none of them
        is sent, and all are canceled and refunded (the ingest cancels what it writes after
        this, when it sees the campaign canceled at its next chunk).
        """
        await self._actionable(account, campaign_id, "canceled")
        if not await self.store.end_campaign(campaign_id, "canceled", only_if=None):
            raise Conflict("the campaign has ended")
        await self._cancel_waiting(campaign_id)
        return await self.get(account, campaign_id)

    async def _cancel_waiting(self, campaign_id: str) -> None:
        while ids := await self.store.campaign_waiting_ids(campaign_id, 1000):
            changes = [
                StatusChange(mid, Status.CANCELED.value, error_code="canceled",
                             detail="campaign canceled", refund=True)
                for mid in ids
            ]  # fmt: skip
            await self.store.apply(changes)
