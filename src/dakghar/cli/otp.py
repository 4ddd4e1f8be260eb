"""``dakghar otp send`` / ``dakghar otp check``: try OTP verification from the shell.

Works on the configured store directly, like the other administrative commands: the code goes
out as an ``otp`` message that a running ``dakghar serve`` delivers. Each command is a fresh
process, so the in-memory abuse limits of the API (per number, per range) do not carry over
between invocations; the stored rules (attempts, expiry, one approval) do.
"""

from __future__ import annotations

import click
import structlog

from dakghar.cli.admin import with_store
from dakghar.errors import DakgharError
from dakghar.observability.logging import configure_logging
from dakghar.otp import OtpRequest, OtpService
from dakghar.otp.templates import DEFAULT_TEMPLATE
from dakghar.pipeline.accept import Acceptor
from dakghar.pipeline.switches import Switchboard
from dakghar.settings import Settings
from dakghar.store import Store
from dakghar.store.base import Account, OtpVerification

_ACCOUNT_HELP = "Account id or name (default: the 'demo' account of 'dakghar serve --demo')."


async def _account(store: Store, name_or_id: str) -> Account:
    acc = await store.get_account(name_or_id) or await store.find_account_by_name(name_or_id)
    if acc is None:
        raise click.ClickException(f"no account with id or name {name_or_id!r}")
    return acc


async def _service(store: Store, settings: Settings) -> OtpService:
    # Log lines go to stderr (redacted), so stdout carries only the answer scripts read.
    configure_logging(settings.log_level, settings.log_format)
    structlog.configure(cache_logger_on_first_use=False)  # one short command: nothing to cache
    switches = Switchboard(store)
    await switches.refresh()
    acceptor = Acceptor(store, switches, data_dir=settings.data_dir)
    return OtpService(store, acceptor, settings.secret)


def _fail(exc: DakgharError) -> click.ClickException:
    return click.ClickException(f"{exc.code}: {exc.detail}")


@click.group()
def otp() -> None:
    """Send and check one-time codes (OTP verification)."""


@otp.command("send")
@click.argument("number")
@click.option("--account", "account", default="demo", show_default=True, help=_ACCOUNT_HELP)
@click.option(
    "--live",
    is_flag=True,
    help="Send through the configured routes (billed); default is the simulated carrier.",
)
@click.option("--length", type=click.IntRange(4, 10), default=6, show_default=True)
@click.option("--ttl", type=click.IntRange(60, 3600), default=300, show_default=True)
@click.option("--template", default=DEFAULT_TEMPLATE, show_default=True, help="Must hold {code}.")
@click.pass_context
def otp_send(
    ctx: click.Context, number: str, account: str, live: bool, length: int, ttl: int, template: str
) -> None:
    """Start a verification for NUMBER and print its id.

    In sandbox (the default) the message text is printed too, as a sandbox key would see it.
    """

    async def body(store: Store, settings: Settings) -> tuple[OtpVerification, str | None]:
        acc = await _account(store, account)
        service = await _service(store, settings)
        req = OtpRequest(to=number, template=template, length=length, ttl_seconds=ttl)
        try:
            sent = await service.send(acc, req, sandbox=not live)
        except DakgharError as exc:
            raise _fail(exc) from None
        text = None if live or sent.message is None else sent.message.body
        return sent.verification, text

    verification, text = with_store(ctx, body)
    click.echo(verification.id)
    click.echo(f"to {verification.to_number}, expires in {verification.ttl_seconds} s", err=True)
    if text is not None:
        click.echo(f"sandbox message: {text}", err=True)


@otp.command("check")
@click.argument("number")
@click.argument("code")
@click.option("--account", "account", default="demo", show_default=True, help=_ACCOUNT_HELP)
@click.pass_context
def otp_check(ctx: click.Context, number: str, code: str, account: str) -> None:
    """Check CODE against the newest verification of NUMBER; exit status 0 only if approved."""

    async def body(store: Store, settings: Settings) -> OtpVerification:
        acc = await _account(store, account)
        service = await _service(store, settings)
        try:
            return await service.check(acc, code, to=number)
        except DakgharError as exc:
            raise _fail(exc) from None

    result = with_store(ctx, body)
    click.echo(f"{result.status}\tattempts_left={result.attempts_left}\t{result.id}")
    if result.status != "approved":
        ctx.exit(1)
