"""``dakghar campaigns create|status``: send a CSV campaign from the shell and follow it.

Works on the configured store directly, like the other administrative commands: the rows are
validated, scrubbed and queued by the same code as ``POST /v1/campaigns``, and a running
``dakghar serve`` delivers them. ``create`` then follows the campaign with a live progress bar
until nothing is left to send (Ctrl-C stops following; the campaign goes on).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import click
import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from dakghar.campaigns.service import CampaignService, CampaignSpec, CampaignView
from dakghar.cli.admin import with_store
from dakghar.errors import DakgharError
from dakghar.observability.logging import configure_logging
from dakghar.pipeline.accept import Acceptor
from dakghar.settings import Settings
from dakghar.store import Store
from dakghar.store.base import Account
from dakghar.store.campaigns import CampaignStore

_ACCOUNT_HELP = "Account id or name (default: the 'demo' account of 'dakghar serve --demo')."
_ENDED = ("completed", "canceled", "failed")


async def _account(store: Store, name_or_id: str) -> Account:
    acc = await store.get_account(name_or_id) or await store.find_account_by_name(name_or_id)
    if acc is None:
        raise click.ClickException(f"no account with id or name {name_or_id!r}")
    return acc


def _service(store: Store, settings: Settings) -> CampaignService:
    configure_logging(settings.log_level, settings.log_format)
    structlog.configure(cache_logger_on_first_use=False)
    if not isinstance(store, CampaignStore):
        raise click.ClickException("the configured store does not keep campaigns")
    return CampaignService(store, Acceptor(store))


def _summary(c: CampaignView) -> str:
    return (
        f"{c.id} {c.status}: {c.total} rows, {c.valid} valid, {c.invalid} invalid, "
        f"{c.duplicates} duplicates, {c.dnd_filtered} DND-filtered; "
        f"{c.queued} queued, {c.sent} sent, {c.delivered} delivered, {c.failed} failed"
    )


async def _follow(service: CampaignService, acc: Account, first: CampaignView) -> CampaignView:
    current = first
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task(current.status, total=max(1, current.valid))
        while True:
            done = current.valid - current.queued
            label = f"{current.status} · {current.delivered} delivered · {current.failed} failed"
            progress.update(task, completed=done, description=label)
            if current.status in _ENDED:
                return current
            await asyncio.sleep(0.5)
            current = await service.get(acc, current.id)


@click.group()
def campaigns() -> None:
    """Bulk campaigns from a CSV file."""


@campaigns.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--body", required=True, help="Message text; {column} takes a CSV column's value.")
@click.option("--sender", default=None, help="Sender ID (a registered header under DLT).")
@click.option(
    "--type",
    "mtype",
    type=click.Choice(["promotional", "transactional"]),
    default="promotional",
    show_default=True,
)
@click.option("--rate", type=click.IntRange(1, 10_000), default=None, help="Messages per second.")
@click.option("--schedule-at", default=None, help="ISO 8601 start time with a zone.")
@click.option("--name", default=None, help="A name to recognise the campaign by.")
@click.option("--account", "account", default="demo", show_default=True, help=_ACCOUNT_HELP)
@click.option("--live", is_flag=True, help="Send for real (billed); default is the sandbox.")
@click.option("--no-follow", is_flag=True, help="Print the campaign id and return at once.")
@click.pass_context
def campaigns_create(
    ctx: click.Context,
    file: Path,
    body: str,
    sender: str | None,
    mtype: str,
    rate: int | None,
    schedule_at: str | None,
    name: str | None,
    account: str,
    live: bool,
    no_follow: bool,
) -> None:
    """Queue a message for every row of FILE (a CSV with a 'phone' column) and follow it."""
    try:
        when = datetime.fromisoformat(schedule_at.replace("Z", "+00:00")) if schedule_at else None
    except ValueError:
        raise click.BadParameter("not an ISO 8601 time", param_hint="--schedule-at") from None
    spec = CampaignSpec(
        body=body, sender=sender, type=mtype, name=name, schedule_at=when, rate_per_second=rate
    )

    async def run(store: Store, settings: Settings) -> CampaignView:
        acc = await _account(store, account)
        service = _service(store, settings)
        try:
            with file.open("rb") as upload:
                created = await service.create(acc, spec, upload, sandbox=not live)
        except DakgharError as exc:
            raise click.ClickException(f"{exc.code}: {exc.detail}") from None
        click.echo(created.id)
        click.echo(_summary(created), err=True)
        if no_follow or created.status == "scheduled":
            return created
        click.echo(
            "following it: a running 'dakghar serve' on this database sends the messages "
            "(Ctrl-C stops following; the campaign goes on)",
            err=True,
        )
        try:
            return await _follow(service, acc, created)
        except asyncio.CancelledError:  # Ctrl-C: stop following, the campaign goes on
            return created

    final = with_store(ctx, run)
    if not no_follow:
        click.echo(_summary(final), err=True)


@campaigns.command("status")
@click.argument("campaign_id")
@click.option("--account", "account", default="demo", show_default=True, help=_ACCOUNT_HELP)
@click.pass_context
def campaigns_status(ctx: click.Context, campaign_id: str, account: str) -> None:
    """Print a campaign's progress as JSON."""

    async def run(store: Store, settings: Settings) -> CampaignView:
        acc = await _account(store, account)
        try:
            return await _service(store, settings).get(acc, campaign_id)
        except DakgharError as exc:
            raise click.ClickException(f"{exc.code}: {exc.detail}") from None

    click.echo(json.dumps(asdict(with_store(ctx, run))))
