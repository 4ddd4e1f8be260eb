"""``dakghar routes``: show, try and edit the ``[[routes]]`` rules of dakghar.toml.

Routes live in the config file (reviewable, versionable); these commands read and edit it with
``tomlkit`` so that comments and layout survive. A running gateway reads the file again on
``dakghar reload`` (or at its next start).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import tomlkit
from tomlkit.items import AoT

from dakghar.core.numbers import parse_number
from dakghar.errors import DakgharError
from dakghar.pipeline.routing import (
    NoRoute,
    Router,
    RoutingInput,
    checked_router,
    live_connector_names,
)
from dakghar.settings import Settings, SettingsError, load_settings

RELOAD_HINT = "a running gateway applies it on 'dakghar reload' or at its next start"


def _config_path(ctx: click.Context) -> Path:
    path = (ctx.find_root().obj or {}).get("config") or "dakghar.toml"
    return Path(path)


def _settings(ctx: click.Context) -> Settings:
    try:
        return load_settings(_config_path(ctx) if _config_path(ctx).exists() else None)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _router(ctx: click.Context) -> tuple[Router, list[str]]:
    settings = _settings(ctx)
    try:
        router = Router.from_settings(settings.routes)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    return router, live_connector_names(settings.connectors)


@click.group()
def routes() -> None:
    """Routing rules: which connectors a message goes through (first match wins)."""


@routes.command("list")
@click.pass_context
def list_routes(ctx: click.Context) -> None:
    """Show the rules in order, with their weights and failover order."""
    router, connectors = _router(ctx)
    if not router.rules:
        click.echo("no routes: live messages fail with no_route (sandbox keys use the simulator)")
        return
    for line in router.describe():
        click.echo(line)
    try:
        router.validate(connectors)
    except ValueError as exc:
        click.echo(f"warning: {exc}", err=True)


@routes.command("test")
@click.argument("to")
@click.option(
    "--type",
    "mtype",
    type=click.Choice(["otp", "transactional", "promotional"]),
    default="transactional",
    show_default=True,
)
@click.option("--account", default="acc_cli", help="Account id or name to route as.")
@click.option("--region", default="IN", show_default=True, help="Default region for the number.")
@click.pass_context
def test_route(ctx: click.Context, to: str, mtype: str, account: str, region: str) -> None:
    """Which connectors a message to TO would go through, in order."""
    router, _ = _router(ctx)
    try:
        number = parse_number(to, region)
    except DakgharError as exc:
        raise click.ClickException(exc.detail) from exc
    inp = RoutingInput(number.e164, number.country, number.carrier, mtype, account, account)
    try:
        rule = router.match(inp)
    except NoRoute as exc:
        raise click.ClickException(f"{exc.detail}; it would fail with no_route") from exc
    click.echo(f"{number.e164} ({number.country}, {number.carrier or 'carrier unknown'}, {mtype})")
    click.echo(f"matches {rule.describe()}")
    steps = [
        g.names[0] if len(g.names) == 1 else "one of " + "/".join(g.names) for g in rule.groups
    ]
    click.echo("order: " + " -> ".join(steps))


@routes.command("add")
@click.option("--country", multiple=True, help="ISO country code (repeatable).")
@click.option("--prefix", multiple=True, help="E.164 prefix, e.g. +9198 (repeatable).")
@click.option("--carrier", multiple=True, help="Detected carrier, e.g. Jio (repeatable).")
@click.option("--type", "mtype", multiple=True,
              type=click.Choice(["otp", "transactional", "promotional"]))  # fmt: skip
@click.option("--account", multiple=True, help="Account id or name (repeatable).")
@click.option(
    "--connector",
    "connectors",
    multiple=True,
    required=True,
    help="Connector, in failover order; NAME or NAME:WEIGHT to split traffic.",
)
@click.option("--position", type=int, default=None, help="Insert as rule N (default: last).")
@click.pass_context
def add_route(
    ctx: click.Context,
    country: tuple[str, ...],
    prefix: tuple[str, ...],
    carrier: tuple[str, ...],
    mtype: tuple[str, ...],
    account: tuple[str, ...],
    connectors: tuple[str, ...],
    position: int | None,
) -> None:
    """Add a rule to dakghar.toml (checked before it is written)."""
    table: dict[str, Any] = {}
    for key, values in (("country", country), ("prefix", prefix), ("carrier", carrier),
                        ("type", mtype), ("account", account)):  # fmt: skip
        if values:
            table[key] = values[0] if len(values) == 1 else list(values)
    entries: list[Any] = []
    for c in connectors:
        name, _, weight = c.partition(":")
        if weight:
            try:
                w = float(weight)
                entries.append({"name": name, "weight": int(w) if w.is_integer() else w})
            except ValueError as exc:
                raise click.BadParameter(f"bad weight in {c!r}", param_hint="--connector") from exc
        else:
            entries.append(name)
    table["connectors"] = entries
    path = _config_path(ctx)
    doc = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    rules = doc.get("routes")
    current = [dict(r) for r in rules] if isinstance(rules, AoT) else []
    index = len(current) if position is None else max(0, min(len(current), position - 1))
    live = live_connector_names(_settings(ctx).connectors)
    try:  # the same check as start-up and SIGHUP reload: nothing written that they refuse
        checked_router([*current[:index], table, *current[index:]], live)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if not isinstance(rules, AoT):
        rules = tomlkit.aot()
        doc["routes"] = rules
    item = tomlkit.table()
    for key, value in table.items():
        item[key] = value
    rules.insert(index, item)
    _write(path, doc)
    click.echo(f"added route #{index + 1} to {path}; {RELOAD_HINT}")


@routes.command("remove")
@click.argument("number", type=int)
@click.pass_context
def remove_route(ctx: click.Context, number: int) -> None:
    """Remove rule NUMBER (as 'dakghar routes list' numbers them)."""
    path = _config_path(ctx)
    doc = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    rules = doc.get("routes")
    if not isinstance(rules, AoT) or not 1 <= number <= len(rules):
        raise click.ClickException(f"there is no route #{number} in {path}")
    del rules[number - 1]
    if not len(rules):
        del doc["routes"]
    _write(path, doc)
    click.echo(f"removed route #{number} from {path}; {RELOAD_HINT}")


def _write(path: Path, doc: tomlkit.TOMLDocument) -> None:
    text = tomlkit.dumps(doc)
    path.write_text(text if text.endswith("\n") else text + "\n")
