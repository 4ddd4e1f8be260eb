"""The ``dakghar`` command: serve the gateway and administer accounts and keys.

Each administrative command opens the configured store, does one thing and closes it; ``serve``
runs the API (and, as the pipeline grows, the dispatcher and simulated carrier) in one process.
"""

from __future__ import annotations

import click

from dakghar import __version__
from dakghar.cli.admin import accounts, keys
from dakghar.cli.analytics import stats
from dakghar.cli.campaigns import campaigns
from dakghar.cli.compliance import dnd_group, senders, templates  # also adds `accounts dlt`
from dakghar.cli.operations import pause, reload, resume, status
from dakghar.cli.otp import otp
from dakghar.cli.routes import routes
from dakghar.cli.serve import serve
from dakghar.cli.upkeep import backup, migrate_command, purge, restore
from dakghar.smpp.cli import simulator


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dakghar")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default: ./dakghar.toml if present). DAKGHAR_* variables win over it.",
)
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """Dakghar: a self-hosted SMS gateway.

    Start it with 'dakghar serve --demo' and send your first message with the key it prints.
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


cli.add_command(serve)
cli.add_command(accounts)
cli.add_command(keys)
cli.add_command(pause)
cli.add_command(resume)
cli.add_command(status)
cli.add_command(reload)
cli.add_command(simulator)
cli.add_command(otp)
cli.add_command(routes)
cli.add_command(senders)
cli.add_command(templates)
cli.add_command(dnd_group)
cli.add_command(campaigns)
cli.add_command(stats)
for command in (backup, restore, migrate_command, purge):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


if __name__ == "__main__":
    main()
