"""``dakghar senders|templates|dnd`` and ``dakghar accounts dlt``: India's DLT rules from the shell.

Register sender headers and DLT templates per account, import the national do-not-disturb list
(a file beside an SQLite database, else in the data directory, that a running gateway picks up
within a second), and switch an account's DLT enforcement on or off. Each command opens the
configured store, whichever backend it is, and closes it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from dakghar.cli.admin import accounts, with_store
from dakghar.compliance import dnd, records
from dakghar.compliance.templates import Template, validate
from dakghar.errors import DakgharError
from dakghar.settings import Settings
from dakghar.store import Store
from dakghar.store.base import Account

_ACCOUNT_HELP = "Account id or name."


async def _account(store: Store, name_or_id: str) -> Account:
    acc = await store.get_account(name_or_id) or await store.find_account_by_name(name_or_id)
    if acc is None:
        raise click.ClickException(f"no account with id or name {name_or_id!r}")
    return acc


@accounts.command("dlt")
@click.argument("account")
@click.option("--on/--off", "on", required=True, help="Enforce DLT senders and templates.")
@click.pass_context
def accounts_dlt(ctx: click.Context, account: str, on: bool) -> None:
    """Turn DLT sender and template checks on or off for ACCOUNT (Indian destinations)."""

    async def body(store: Store, _s: Settings) -> Account:
        acc = await _account(store, account)
        updated = await store.update_account(acc.id, dlt_enforced=on)
        assert updated is not None
        return updated

    acc = with_store(ctx, body)
    click.echo(f"{acc.id}: DLT enforcement {'on' if acc.dlt_enforced else 'off'}")


@click.group()
def senders() -> None:
    """Registered sender headers (DLT) per account."""


@senders.command("add")
@click.argument("header")
@click.option("--account", required=True, help=_ACCOUNT_HELP)
@click.option(
    "--type",
    "stype",
    type=click.Choice(records.SENDER_TYPES),
    required=True,
    help="Which messages the header may carry.",
)
@click.option("--entity-id", default=None, help="The DLT principal entity id.")
@click.pass_context
def senders_add(
    ctx: click.Context, header: str, account: str, stype: str, entity_id: str | None
) -> None:
    """Register HEADER for an account."""

    async def body(store: Store, _s: Settings) -> str:
        acc = await _account(store, account)
        await records.add_sender(store, acc.id, records.Sender(header, stype, entity_id))
        return acc.id

    acc_id = with_store(ctx, body)
    click.echo(f"{acc_id}: sender {header.upper()} registered ({stype})")


@senders.command("list")
@click.option("--account", required=True, help=_ACCOUNT_HELP)
@click.pass_context
def senders_list(ctx: click.Context, account: str) -> None:
    """List an account's sender headers as JSON lines."""

    async def body(store: Store, _s: Settings) -> records.Rules:
        acc = await _account(store, account)
        return await records.load(store, acc.id)

    for s in with_store(ctx, body).senders:
        click.echo(json.dumps({"header": s.header, "type": s.type, "entity_id": s.entity_id}))


@click.group()
def templates() -> None:
    """Registered DLT content templates per account."""


def _add(ctx: click.Context, account: str, items: list[Template]) -> int:
    async def body(store: Store, _s: Settings) -> int:
        acc = await _account(store, account)
        return await records.add_templates(store, acc.id, items)

    return with_store(ctx, body)


@templates.command("add")
@click.argument("template_id")
@click.option("--account", required=True, help=_ACCOUNT_HELP)
@click.option("--header", required=True, help="The sender header the template belongs to.")
@click.option("--category", default="service", show_default=True, help="DLT content category.")
@click.option("--text", required=True, help="Template text with {#var#} placeholders.")
@click.pass_context
def templates_add(
    ctx: click.Context, template_id: str, account: str, header: str, category: str, text: str
) -> None:
    """Register one template."""
    try:
        item = Template(template_id, header.upper(), category, validate(text))
    except DakgharError as exc:
        raise click.ClickException(exc.detail) from exc
    _add(ctx, account, [item])
    click.echo(f"template {template_id} registered for {header.upper()}")


_COLUMNS = {
    "id": ("template_id", "id", "dlt_template_id"),
    "header": ("header", "sender", "header_name"),
    "category": ("category", "content_type", "type"),
    "text": ("text", "template", "content", "template_text"),
}


@templates.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", required=True, help=_ACCOUNT_HELP)
@click.pass_context
def templates_import(ctx: click.Context, file: Path, account: str) -> None:
    """Register every template of a CSV (columns template_id, header, category, text)."""
    items: list[Template] = []
    with file.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        names = {n.strip().lower(): n for n in reader.fieldnames or ()}
        cols = {
            k: next((names[a] for a in alts if a in names), None) for k, alts in _COLUMNS.items()
        }
        if cols["id"] is None or cols["header"] is None or cols["text"] is None:
            raise click.ClickException("the CSV needs columns template_id, header and text")
        width = len(reader.fieldnames or ())
        for row in reader:
            # DictReader puts surplus fields under None and fills missing ones with None: both
            # mean a comma the CSV did not quote (or a short line), so the text would be cut.
            extra, short = row.get(None), any(v is None for k, v in row.items() if k is not None)
            if extra or short:
                got = width + len(extra or []) - sum(v is None for v in row.values())
                raise click.ClickException(
                    f"line {reader.line_num}: {got} fields where the header has {width}; "
                    'put a text that holds commas in double quotes ("...")'
                )
            category = row[cols["category"]] if cols["category"] else "service"
            try:
                text = validate(row[cols["text"]])
            except DakgharError as exc:
                raise click.ClickException(f"line {reader.line_num}: {exc.detail}") from exc
            items.append(Template(row[cols["id"]], row[cols["header"]].upper(), category, text))
    count = _add(ctx, account, items)
    click.echo(f"{count} templates imported")


@templates.command("list")
@click.option("--account", required=True, help=_ACCOUNT_HELP)
@click.pass_context
def templates_list(ctx: click.Context, account: str) -> None:
    """List an account's templates as JSON lines."""

    async def body(store: Store, _s: Settings) -> records.Rules:
        acc = await _account(store, account)
        return await records.load(store, acc.id)

    for t in with_store(ctx, body).templates:
        click.echo(
            json.dumps({"id": t.id, "header": t.header, "category": t.category, "text": t.text})
        )


@click.group("dnd")
def dnd_group() -> None:
    """The national do-not-disturb list (TRAI NCPR)."""


@dnd_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def dnd_import(ctx: click.Context, file: Path) -> None:
    """Replace the DND list with FILE (CSV: phone,preferences; 0 = fully blocked)."""

    async def where(store: Store, settings: Settings) -> Path:
        found = dnd.list_dir(store, settings.data_dir)
        assert found is not None  # a data directory is always set
        return found

    target = with_store(ctx, where)
    total = file.stat().st_size
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task("reading", total=total)
        result = dnd.import_csv(file, target, lambda done: progress.update(task, completed=done))
        progress.update(task, description="done")
    click.echo(
        f"{result.numbers} numbers imported ({result.skipped} rows skipped) into "
        f"{result.path} ({result.bytes / 1e6:.1f} MB)"
    )
