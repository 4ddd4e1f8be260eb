"""``dakghar stats``: delivery rate and delivery time by carrier, region, connector or type."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from dakghar.cli.admin import with_store
from dakghar.settings import Settings
from dakghar.store import Store
from dakghar.store.base import now_ms
from dakghar.store.rollups import GROUPS, StatsRow


def _ms(value: datetime | None, default: int) -> int:
    if value is None:
        return default
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


@click.command("stats")
@click.option("--account", required=True, help="Account id or name.")
@click.option("--by", "group_by", type=click.Choice(GROUPS), default="carrier", show_default=True)
@click.option("--since", type=click.DateTime(), default=None, help="UTC; default 24 h ago.")
@click.option("--until", type=click.DateTime(), default=None, help="UTC; default now.")
@click.pass_context
def stats(
    ctx: click.Context,
    account: str,
    group_by: str,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Delivery rate and median delivery time per carrier (or region, connector, type)."""
    end = _ms(until, now_ms())
    start = _ms(since, end - 86_400_000)

    async def body(store: Store, _s: Settings) -> list[StatsRow]:
        acc = await store.get_account(account) or await store.find_account_by_name(account)
        if acc is None:
            raise click.ClickException(f"no account {account!r}")
        return await store.delivery_stats(acc.id, group_by, start, end)

    rows = with_store(ctx, body)
    table = Table(title=f"delivery by {group_by}")
    for column in (group_by, "submitted", "delivered", "failed", "delivery rate", "p50 delivery"):
        table.add_column(column, justify="left" if column == group_by else "right")
    for r in rows:
        rate = "-" if r.delivery_rate is None else f"{r.delivery_rate:.1%}"
        p50 = "-" if r.p50_delivery_seconds is None else f"{r.p50_delivery_seconds:g} s"
        table.add_row(r.key, str(r.submitted), str(r.delivered), str(r.failed), rate, p50)
    Console().print(table)
