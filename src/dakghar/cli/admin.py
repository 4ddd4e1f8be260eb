"""``dakghar accounts ...`` and ``dakghar keys ...``: administration through the store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import msgspec

from dakghar.api.render import credits, iso
from dakghar.core.compose import check_sender
from dakghar.core.keys import generate_key
from dakghar.errors import DakgharError
from dakghar.settings import Settings, SettingsError, ensure_secret_key, load_settings
from dakghar.store import Store, open_store
from dakghar.store.base import Account, ApiKey, now_ms

T = TypeVar("T")


def _settings(ctx: click.Context) -> Settings:
    config = (ctx.find_root().obj or {}).get("config")
    try:
        return ensure_secret_key(load_settings(config))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def with_store(ctx: click.Context, body: Callable[[Store, Settings], Awaitable[T]]) -> T:
    """Open the configured store, run ``body``, close it."""
    settings = _settings(ctx)

    async def go() -> T:
        store = open_store(settings)
        await store.open()
        try:
            return await body(store, settings)
        finally:
            await store.close()

    return asyncio.run(go())


async def _account_or_fail(store: Store, account_id: str) -> Account:
    """The account with this id, or else the oldest one with this name."""
    acc = await store.get_account(account_id) or await store.find_account_by_name(account_id)
    if acc is None:
        raise click.ClickException(f"no account {account_id!r}")
    return acc


def _as_dict(acc: Account) -> dict[str, Any]:
    """An account as the CLI prints it: credits and ISO 8601 times, as the API does."""
    data = {f: getattr(acc, f) for f in acc.__dataclass_fields__}
    data["balance"] = credits(data.pop("balance_milli"))
    data["price_per_segment"] = credits(data.pop("price_milli_per_segment"))
    data["created_at"] = iso(acc.created_at)
    data["webhook_secret"] = "[set]"  # GET /v1/account/webhook-secret shows it to the account
    data.pop("previous_webhook_secret")
    data["previous_secret_expires_at"] = iso(acc.previous_secret_expires_at)
    return data


@click.group()
def accounts() -> None:
    """Create and manage accounts."""


@accounts.command("create")
@click.argument("name")
@click.option(
    "--balance",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Starting balance in credits.",
)
@click.option(
    "--region",
    default="IN",
    show_default=True,
    help="Default region for numbers written without a country code (ISO 3166).",
)
@click.option(
    "--sender",
    default=None,
    help="Default sender ID (without one, every message must name its sender: invalid_sender).",
)
@click.option(
    "--countries",
    default=None,
    help="Comma-separated destination countries allowed (default: all).",
)
@click.option(
    "--price",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Price in credits per segment.",
)
@click.option(
    "--rate",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per second allowed per API key (default: [api] key_rate_per_second, 200).",
)
@click.option(
    "--burst",
    type=click.IntRange(min=1),
    default=None,
    help="Requests a key may send at once before the rate applies (default: [api] key_burst, 400).",
)
@click.option(
    "--segment-limit",
    type=click.IntRange(1, 255),
    default=10,
    show_default=True,
    help="Most segments one message may use (body_too_long above it).",
)
@click.pass_context
def accounts_create(
    ctx: click.Context,
    name: str,
    balance: float,
    region: str,
    sender: str | None,
    countries: str | None,
    price: float,
    rate: int | None,
    burst: int | None,
    segment_limit: int,
) -> None:
    """Create an account and print its id."""
    region = region.upper()
    if len(region) != 2 or not region.isalpha():
        raise click.BadParameter("use a two-letter ISO region such as IN", param_hint="--region")

    async def body(store: Store, settings: Settings) -> Account:
        return await store.create_account(
            name=name,
            balance_milli=round(balance * 1000),
            default_region=region,
            default_sender=sender,
            allowed_countries=countries.upper() if countries else None,
            price_milli_per_segment=round(price * 1000),
            rate_per_second=rate or settings.api.key_rate_per_second,
            rate_burst=burst or settings.api.key_burst,
            segment_limit=segment_limit,
        )

    click.echo(with_store(ctx, body).id)
    if sender is None:
        click.echo(
            "note: no --sender given, so every message of this account must name its sender",
            err=True,
        )


@accounts.command("list")
@click.pass_context
def accounts_list(ctx: click.Context) -> None:
    """One line per account: id, name, balance, default sender, state."""

    async def body(store: Store, _s: Settings) -> list[Account]:
        return await store.list_accounts()

    for acc in with_store(ctx, body):
        state = "paused" if acc.sending_paused else "active"
        click.echo(
            f"{acc.id}  {acc.name}  balance {credits(acc.balance_milli)}  "
            f"sender {acc.default_sender or '-'}  {state}"
        )


@accounts.command("update")
@click.argument("account_id")
@click.option("--balance", type=click.FloatRange(min=0), default=None, help="Set the balance.")
@click.option("--price", type=click.FloatRange(min=0), default=None, help="Credits per segment.")
@click.option("--segment-limit", type=click.IntRange(1, 255), default=None,
              help="Most segments one message may use.")  # fmt: skip
@click.option("--rate", type=click.IntRange(min=1), default=None, help="Requests/s per API key.")
@click.option("--burst", type=click.IntRange(min=1), default=None, help="Burst per API key.")
@click.option("--sender", default=None, help="Default sender ID.")
@click.option("--region", default=None, help="Default region (ISO 3166, e.g. IN).")
@click.option("--countries", default=None,
              help="Allowed destination countries, comma-separated, or 'all'.")  # fmt: skip
@click.option("--webhook-events", type=click.Choice(["final", "sent", "all"]), default=None,
              help="Which status changes are POSTed.")  # fmt: skip
@click.option("--smart-encoding/--no-smart-encoding", default=None,
              help="Replace look-alike characters so text stays GSM-7.")  # fmt: skip
@click.option("--retention-days", type=click.IntRange(min=0), default=None,
              help="Days message bodies are kept (then purged; 0 keeps them).")  # fmt: skip
@click.pass_context
def accounts_update(
    ctx: click.Context,
    account_id: str,
    balance: float | None,
    price: float | None,
    segment_limit: int | None,
    rate: int | None,
    burst: int | None,
    sender: str | None,
    region: str | None,
    countries: str | None,
    webhook_events: str | None,
    smart_encoding: bool | None,
    retention_days: int | None,
) -> None:
    """Change an account's billing fields and settings (only those given); print it as JSON."""
    changes: dict[str, Any] = {
        "balance_milli": None if balance is None else round(balance * 1000),
        "price_milli_per_segment": None if price is None else round(price * 1000),
        "segment_limit": segment_limit,
        "rate_per_second": rate,
        "rate_burst": burst,
        "webhook_events": webhook_events,
        "smart_encoding": smart_encoding,
        "retention_days": retention_days,
    }
    if sender is not None:
        try:
            changes["default_sender"] = check_sender(sender)
        except DakgharError as exc:
            raise click.BadParameter(exc.detail, param_hint="--sender") from exc
    if region is not None:
        if len(region) != 2 or not region.isalpha():
            raise click.BadParameter(
                "use a two-letter ISO region such as IN", param_hint="--region"
            )
        changes["default_region"] = region.upper()
    if countries is not None:
        changes["allowed_countries"] = None if countries.lower() == "all" else countries.upper()
    changes = {k: v for k, v in changes.items() if v is not None or k == "allowed_countries"}
    if countries is None:
        changes.pop("allowed_countries", None)
    if not changes:
        raise click.UsageError("give at least one setting to change; see --help")

    async def body(store: Store, _s: Settings) -> Account | None:
        acc = await _account_or_fail(store, account_id)
        return await store.update_account(acc.id, **changes)

    acc = with_store(ctx, body)
    assert acc is not None
    click.echo(msgspec.json.format(msgspec.json.encode(_as_dict(acc))))


@accounts.command("show")
@click.argument("account_id")
@click.pass_context
def accounts_show(ctx: click.Context, account_id: str) -> None:
    """Print an account (by id or name) as JSON."""

    async def body(store: Store, _s: Settings) -> Account:
        return await _account_or_fail(store, account_id)

    click.echo(msgspec.json.format(msgspec.json.encode(_as_dict(with_store(ctx, body)))))


@accounts.command("credit")
@click.argument("account_id")
@click.argument("amount", type=float)
@click.pass_context
def accounts_credit(ctx: click.Context, account_id: str, amount: float) -> None:
    """Add AMOUNT credits (negative to debit) and print the new balance."""

    async def body(store: Store, _s: Settings) -> Account | None:
        acc = await _account_or_fail(store, account_id)
        return await store.update_account(
            account_id, balance_milli=acc.balance_milli + round(amount * 1000)
        )

    acc = with_store(ctx, body)
    click.echo(f"{acc.balance_milli / 1000 if acc else 0}")


async def _announce(settings: Settings, topic: str, subject: str) -> None:
    """Tell a fleet's running processes (Redis fan-out) about a change just stored, so they
    act on it within a second; without Redis they see it at their next refresh."""
    if not settings.queue_url:
        return
    from dakghar.coord import open_coordinator

    coord = open_coordinator(settings)
    try:
        await coord.publish(topic, subject.encode())
    except Exception as exc:  # stored already: the processes' own refresh finds it
        click.echo(f"  note: the fleet was not told at once ({type(exc).__name__})", err=True)
    finally:
        await coord.close()


def _set_paused(ctx: click.Context, account_id: str, paused: bool) -> None:
    async def body(store: Store, settings: Settings) -> None:
        from dakghar.coord import Topic

        await _account_or_fail(store, account_id)
        await store.update_account(account_id, sending_paused=paused)
        await _announce(settings, Topic.ACCOUNT_PAUSE, account_id)

    with_store(ctx, body)
    click.echo(f"sending {'paused' if paused else 'resumed'} for {account_id}")


@accounts.command("pause")
@click.argument("account_id")
@click.pass_context
def accounts_pause(ctx: click.Context, account_id: str) -> None:
    """Kill switch: refuse new messages for the account (503 sending_paused)."""
    _set_paused(ctx, account_id, True)


@accounts.command("resume")
@click.argument("account_id")
@click.pass_context
def accounts_resume(ctx: click.Context, account_id: str) -> None:
    """Accept messages for the account again."""
    _set_paused(ctx, account_id, False)


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.argument("account_id")
@click.option(
    "--sandbox",
    "mode",
    flag_value="test",
    help="A test_ key: simulated carrier only, never billed.",
)
@click.option("--live", "mode", flag_value="live", help="A live_ key: the configured routes.")
@click.option("--name", default=None, help="A label for the key.")
@click.option(
    "--admin",
    is_flag=True,
    help="Operator rights: global and per-connector kill switches (/v1/switches), "
    "connector state (/v1/connectors) and the dashboard (/dashboard).",
)
@click.pass_context
def keys_create(
    ctx: click.Context, account_id: str, mode: str | None, name: str | None, admin: bool
) -> None:
    """Create a key and print it (shown only this once; only its hash is stored)."""
    if mode is None:
        raise click.UsageError("choose --sandbox or --live")

    async def body(store: Store, settings: Settings) -> str:
        await _account_or_fail(store, account_id)
        new = generate_key(settings.secret, mode)
        await store.create_api_key(
            ApiKey(
                new.key_id,
                account_id,
                mode,
                new.key_hash,
                name,
                now_ms(),
                None,
                "admin" if admin else "",
            )
        )
        return new.key

    click.echo(with_store(ctx, body))


@keys.command("list")
@click.argument("account_id")
@click.pass_context
def keys_list(ctx: click.Context, account_id: str) -> None:
    """List an account's keys by their visible id (the secret part is never stored)."""

    async def body(store: Store, _s: Settings) -> list[ApiKey]:
        await _account_or_fail(store, account_id)
        return await store.list_api_keys(account_id)

    for key in with_store(ctx, body):
        state = "revoked" if key.revoked_at else "active"
        click.echo(f"{key.id}\t{key.mode}\t{state}\t{key.name or ''}")


@keys.command("revoke")
@click.argument("account_id")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, account_id: str, key_id: str) -> None:
    """Revoke a key by its visible id (e.g. test_k3j9x0a8b2c1)."""

    async def body(store: Store, settings: Settings) -> bool:
        from dakghar.coord import Topic

        revoked = await store.revoke_api_key(account_id, key_id)
        if revoked:
            await _announce(settings, Topic.KEY_REVOKED, key_id)
        return revoked

    if not with_store(ctx, body):
        raise click.ClickException(f"no active key {key_id!r} on account {account_id!r}")
    click.echo(f"revoked {key_id}")
