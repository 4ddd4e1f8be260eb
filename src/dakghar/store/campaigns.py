"""The campaigns area of the store: the campaign row, refused CSV rows, staging and holding.

:class:`CampaignStore` is what ``campaigns/service.py``, the campaign API, the CLI and the
dashboard may ask of a store; ``store/sql/campaigns.py`` implements it once for every relational
backend. A campaign's messages carry ``campaign_id`` (partial index on ``(campaign_id,
status)``), so progress is one index-only ``GROUP BY`` and needs no counters kept in step with
the pipeline. Pausing pushes the campaign's waiting messages far into the future
(``PAUSE_SHIFT``) so neither the dispatcher nor the scheduler sweep picks them; resuming pulls
them back, shifted by the time spent paused, which keeps their order and pacing.

Staging: while a CSV is being ingested its messages are written *staged*, that is moved
``STAGE_SHIFT`` (a century) into the future: the dispatcher claims only due ``queued`` messages
and the scheduler sweep releases only due ``scheduled`` ones, so a staged row is never sent, and
nothing about it needs a status the rest of the gateway does not know. The commit point of an
ingest is one UPDATE of the campaign row (``ingesting`` -> ``running``/``scheduled``); only
after it are the staged rows brought back (``release_staged``) in chunks, so that a million-row
campaign never holds the single writer for seconds (a one-statement flip of 1M rows took
6.8 s here, stalling every OTP behind it). A crash before the commit point leaves an inert
campaign that the service's recovery ends ``failed`` with its rows canceled and refunded; a
crash after it is rolled forward by releasing what is still staged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

PAUSE_SHIFT = 10 * 365 * 24 * 3600 * 1000
STAGE_SHIFT = 100 * 365 * 24 * 3600 * 1000  # beyond any paused message (PAUSE_SHIFT)
ENDED = ("canceled", "failed")  # stored statuses nothing leaves (``completed`` is computed)
WAITING = ("scheduled", "queued")


@dataclass(slots=True)
class CampaignRow:
    """A campaign as stored."""

    id: str
    account_id: str
    name: str | None
    type: str
    sender: str | None
    status: str
    rate_per_second: int | None
    schedule_at: int | None
    total: int
    valid: int
    invalid: int
    duplicates: int
    dnd_filtered: int
    paused_at: int | None
    created_at: int
    updated_at: int


CAMPAIGN_COLUMNS = tuple(CampaignRow.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class Reject:
    """A refused CSV row: its line number, the phone as written, and why (an error code)."""

    row_no: int
    phone: str
    error_code: str


@dataclass(frozen=True, slots=True)
class CampaignMessage:
    """One message of a campaign, as its report shows it."""

    id: str
    to_number: str
    status: str
    error_code: str | None


@runtime_checkable
class CampaignStore(Protocol):
    """Campaign persistence: every method is one read or one atomic write.

    Runtime-checkable, so that the API and the CLI can tell whether the configured store keeps
    campaigns at all.
    """

    async def insert_campaign(self, row: CampaignRow) -> None:
        """Store a new campaign."""
        ...

    async def update_campaign(self, campaign_id: str, **fields: Any) -> None:
        """Set columns of a campaign (and its ``updated_at``)."""
        ...

    async def get_campaign(self, account_id: str, campaign_id: str) -> CampaignRow | None:
        """One campaign of the account."""
        ...

    async def recent_campaigns(self, limit: int = 10) -> list[CampaignRow]:
        """The newest campaigns of every account that are not canceled (the dashboard)."""
        ...

    async def campaigns_with_status(self, statuses: Sequence[str]) -> list[CampaignRow]:
        """Every campaign (of any account) in one of ``statuses`` (recovery at start)."""
        ...

    async def add_campaign_rejects(self, campaign_id: str, rejects: Sequence[Reject]) -> None:
        """Record refused rows (the phone is cut to 64 characters)."""
        ...

    async def campaign_rejects(self, campaign_id: str, after_row: int, limit: int) -> list[Reject]:
        """The next ``limit`` refused rows after line ``after_row``, in line order."""
        ...

    async def campaign_messages(
        self, campaign_id: str, after_id: str, limit: int
    ) -> list[CampaignMessage]:
        """The next ``limit`` messages of the campaign after ``after_id``, in id order."""
        ...

    async def campaign_progress(self, campaign_id: str) -> dict[str, int]:
        """Message counts of a campaign by status."""
        ...

    async def campaign_ingest_progress(self, campaign_id: str, **counts: int) -> str:
        """Store an ingest's live counts (also its heartbeat); the campaign's status as stored.

        The counts are written only while the campaign is ``ingesting``; the status tells a
        running ingest whether it was canceled meanwhile (maybe from another process).
        """
        ...

    async def commit_campaign_ingest(self, campaign_id: str, status: str, **counts: int) -> bool:
        """The commit point of an ingest: ``ingesting`` becomes ``status`` with the counts.

        False when the campaign is no longer ``ingesting`` (canceled, or failed by a recovery).
        """
        ...

    async def release_staged(
        self, campaign_id: str, after: str = "", limit: int = 5000
    ) -> tuple[int, str]:
        """Bring the next ``limit`` staged messages back to their real times.

        Returns how many were moved and the message id to continue ``after`` (a keyset walk,
        so each chunk starts where the last ended); ``(0, after)`` when nothing is left. Moves
        nothing for a campaign still ``ingesting`` or ended. Into a paused campaign they come
        back held, like its other messages, so that resuming moves them with the rest.
        """
        ...

    async def campaign_has_staged(self, campaign_id: str) -> bool:
        """Whether some message of the campaign is still staged."""
        ...

    async def hold_campaign(self, campaign_id: str, now: int) -> int:
        """Pause: push the waiting messages out of reach; how many were."""
        ...

    async def resume_campaign(self, campaign_id: str, paused_at: int, now: int) -> int:
        """Resume: bring held messages back, later by the time spent paused; how many were."""
        ...

    async def end_campaign(self, campaign_id: str, status: str, *, only_if: str | None) -> bool:
        """Set an ended status (``canceled``/``failed``) unless the campaign has ended already.

        With ``only_if``, only from that status (a recovery fails only what is ingesting).
        """
        ...

    async def campaign_waiting_ids(self, campaign_id: str, limit: int) -> list[str]:
        """Ids of messages of the campaign still waiting to be sent (for cancelation)."""
        ...
