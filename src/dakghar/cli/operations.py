"""``dakghar pause`` / ``dakghar resume`` (kill switches) and ``dakghar status``."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from dakghar.cli.admin import with_store
from dakghar.pipeline.routing import SANDBOX_CONNECTOR, live_connector_names
from dakghar.pipeline.switches import Switchboard
from dakghar.settings import PID_FILE, STATE_FILE, Settings, SettingsError, load_settings
from dakghar.store import Store


def _target(global_: bool, connector: str | None, account: str | None) -> tuple[str, str]:
    chosen = [x for x in (global_, connector, account) if x]
    if len(chosen) != 1:
        raise click.UsageError("choose exactly one of --global, --connector NAME, --account ID")
    if global_:
        return "global", "*"
    if connector:
        return "connector", connector
    assert account is not None
    return "account", account


def _flip(ctx: click.Context, scope: str, name: str, paused: bool) -> None:
    async def body(store: Store, settings: Settings) -> None:
        if scope == "account" and await store.get_account(name) is None:
            raise click.ClickException(f"no account {name!r}")
        known = [*live_connector_names(settings.connectors), SANDBOX_CONNECTOR]
        if scope == "connector" and name not in known:
            raise click.ClickException(
                f"no connector {name!r} in the configuration; known: {', '.join(known)}"
            )
        await Switchboard(store).set(scope, name, paused)

    with_store(ctx, body)
    what = "everything" if scope == "global" else f"{scope} {name}"
    click.echo(f"sending {'paused' if paused else 'resumed'} for {what}")


_OPTIONS = [
    click.option("--global", "global_", is_flag=True, help="All sending, every account."),
    click.option("--connector", default=None, help="One connector (traffic fails over)."),
    click.option("--account", default=None, help="One account (its API calls get 503)."),
]


F = TypeVar("F", bound=Callable[..., Any])


def _with_options(fn: F) -> F:
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


@click.command()
@_with_options
@click.pass_context
def pause(ctx: click.Context, global_: bool, connector: str | None, account: str | None) -> None:
    """Kill switch: stop sending. Queued messages wait; none are lost."""
    _flip(ctx, *_target(global_, connector, account), True)


@click.command()
@_with_options
@click.pass_context
def resume(ctx: click.Context, global_: bool, connector: str | None, account: str | None) -> None:
    """Undo 'dakghar pause': waiting messages go out again."""
    _flip(ctx, *_target(global_, connector, account), False)


@click.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Queue depth per status and lane, oldest queued message, paused switches, and the
    running gateway's connectors (bound, window in use, circuit breaker) as JSON."""

    async def body(store: Store, settings: Settings) -> dict[str, object]:
        board = Switchboard(store)
        await board.refresh()
        return {
            **(await store.queue_stats()),
            "paused": board.snapshot(),
            "gateway": _gateway_state(Path(settings.data_dir) / STATE_FILE),
        }

    click.echo(msgspec.json.format(msgspec.json.encode(with_store(ctx, body))))


def _gateway_state(path: Path) -> object:
    """What a running `dakghar serve` last wrote (every second); stale or missing means not
    running. ``processes`` is the layout: the API process (from the pid file) and the process
    running the dispatcher, one and the same with ``[server] delivery = "inline"``."""
    from dakghar.pipeline.view import read_snapshot

    state = read_snapshot(path)
    if state is None:
        if not path.exists():
            return "not running (no state file in the data directory)"
        return "not running (state file is stale)"
    keys = ("connectors", "in_flight", "claimed_ahead", "stats")
    out: dict[str, object] = {k: state[k] for k in keys if k in state}
    processes: list[dict[str, object]] = []
    try:
        api_pid: int | None = int((path.parent / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        api_pid = None
    delivery_pid = state.get("pid")
    if api_pid is not None and api_pid == delivery_pid:
        processes.append({"pid": api_pid, "runs": ["api", "dispatcher"]})
    else:
        if api_pid is not None:
            processes.append({"pid": api_pid, "runs": ["api"]})
        if delivery_pid is not None:
            processes.append({"pid": delivery_pid, "runs": ["dispatcher"]})
    for proc in processes:  # the delivery side runs niced ([server] delivery_nice)
        pid = proc["pid"]
        if isinstance(pid, int):
            with contextlib.suppress(OSError):  # gone since the snapshot
                proc["nice"] = os.getpriority(os.PRIO_PROCESS, pid)
    out["processes"] = processes
    return out


@click.command()
@click.pass_context
def reload(ctx: click.Context) -> None:
    """Make the running 'dakghar serve' of this data directory re-read its routes (SIGHUP).

    The process is found through the pid file that 'serve' writes into its data directory, so
    other gateways on the same machine are left alone.
    """
    try:
        settings = load_settings((ctx.find_root().obj or {}).get("config"))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    pidfile = Path(settings.data_dir) / PID_FILE
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline")
        # A stale file may name a pid reused by something else, which SIGHUP would end.
        if cmdline.exists() and b"serve" not in cmdline.read_bytes():
            raise ProcessLookupError(f"pid {pid} is not a dakghar serve")
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise click.ClickException(
            f"no running 'dakghar serve' for data directory {settings.data_dir!r} "
            f"({pidfile}: {getattr(exc, 'strerror', None) or exc})"
        ) from exc
    click.echo(f"asked dakghar serve (pid {pid}) to reload its routes")
