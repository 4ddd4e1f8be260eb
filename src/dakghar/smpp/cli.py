"""``dakghar simulator``: run the simulated carrier (an SMSC) on its own, for gateways to bind to.

``dakghar serve`` already runs a simulator in-process for sandbox keys; this command is for
pointing another SMPP client (Kannel, a load generator, a second Dakghar) at one, or for
benchmarks. Settings come from the ``[simulator]`` table of dakghar.toml; options override them.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from typing import Any

import click

from dakghar.observability.logging import configure_logging
from dakghar.settings import SettingsError, load_settings
from dakghar.smpp.simulator import MAGIC_NUMBERS, Behaviour, Simulator, SimulatorConfig


def _span(value: str | None) -> tuple[float, float] | None:
    """'300' or '200-800' (milliseconds) as a (low, high) pair."""
    if value is None:
        return None
    try:
        low, _, high = value.partition("-")
        span = (float(low), float(high or low))
    except ValueError:
        raise click.BadParameter(
            f"expected MS or LOW-HIGH in milliseconds, not {value!r}"
        ) from None
    if not 0 <= span[0] <= span[1]:
        raise click.BadParameter(f"expected 0 <= LOW <= HIGH, not {value!r}")
    return span


def build_config(config_path: str | None, **options: Any) -> SimulatorConfig:
    """The [simulator] table of the settings file, with the command-line options on top."""
    try:
        table = dict(load_settings(config_path).simulator)
        table.pop("enabled", None)  # only says whether 'dakghar serve' runs one in-process
        config = SimulatorConfig.from_settings(table)
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(f"simulator settings: {exc}") from exc
    server = {k: options[k] for k in ("host", "port", "seed", "system_id", "password")}
    behaviour = {
        "receipt_delay_ms": _span(options["receipt_delay_ms"]),
        "delivery_rate": options["delivery_rate"],
        "throttle_tps": options["throttle_tps"],
    }
    changes = {k: v for k, v in behaviour.items() if v is not None}

    def override(b: Behaviour) -> Behaviour:
        return replace(b, **changes) if changes else b

    return replace(
        config,
        default=override(config.default),
        rules=tuple((prefix, override(b)) for prefix, b in config.rules),
        **{k: v for k, v in server.items() if v is not None},
    )


def banner(config: SimulatorConfig, host: str, port: int) -> str:
    """What a person starting the simulator needs to see: where, who may bind, what happens."""
    who = "any system_id and password"
    if config.system_id is not None or config.password is not None:
        password = "set" if config.password else "(any)"
        who = f"system_id {config.system_id or '(any)'}, password {password}"
    d = config.default
    lines = [
        f"Dakghar simulated carrier (SMPP 3.4 SMSC) listening on {host}:{port}",
        f"  binds:     transmitter, receiver, transceiver; {who}",
        f"  receipts:  after {d.receipt_delay_ms[0]:g}-{d.receipt_delay_ms[1]:g} ms, "
        f"{d.delivery_rate:.0%} DELIVRD, to a receiver/transceiver of the same system_id",
        f"  throttle:  {f'{d.throttle_tps:g} submit_sm/s per bind' if d.throttle_tps else 'none'}"
        f"; {len(config.rules)} prefix rule(s)",
    ]
    if config.magic_numbers:
        lines.append("  magic numbers:")
        lines += [f"    {number}  {outcome}" for number, outcome in MAGIC_NUMBERS.items()]
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


async def run(config: SimulatorConfig) -> Simulator:
    """Serve until SIGINT or SIGTERM, then unbind every session and stop."""
    sim = Simulator(config)
    host, port = await sim.start()
    click.echo(banner(config, host, port))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        await sim.stop()
    return sim


@click.command("simulator")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on (default 2775; 0 picks a free port and prints it).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file whose [simulator] table to use (default: ./dakghar.toml if present).",
)
@click.option("--seed", type=int, default=None, help="Seed for the random outcomes (repeatable).")
@click.option(
    "--receipt-delay-ms",
    default=None,
    metavar="MS|LOW-HIGH",
    help="Delay before each delivery receipt, fixed or uniform in a range (default 200-800).",
)
@click.option(
    "--delivery-rate",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of accepted messages whose receipt says DELIVRD; the rest UNDELIV (default 1).",
)
@click.option(
    "--throttle-tps",
    type=click.FloatRange(0.0, min_open=True),
    default=None,
    help="Answer ESME_RTHROTTLED above this many submit_sm per second per bind (default: none).",
)
@click.option("--system-id", default=None, help="The only system_id allowed to bind (default any).")
@click.option("--password", default=None, help="The only password accepted (default any).")
@click.option(
    "--log-level",
    default="info",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level on stderr (binds, unbinds, drops; never message text).",
)
@click.pass_context
def simulator(
    ctx: click.Context, /, config_path: str | None, log_level: str, **options: Any
) -> None:
    """Run the simulated carrier: an SMPP 3.4 SMSC for gateways and benchmarks to bind to.

    It answers submit_sm (and data_sm, submit_multi) with a message id, then sends a delivery
    receipt (deliver_sm, esm_class 0x04) to a receiver or transceiver bound with the same
    system_id. Behaviour per destination prefix, error/timeout/drop rates and throttling come
    from the [simulator] table of the config file; see docs/simulator.md. Destinations
    +917000000001..5 are magic numbers (rejected, undelivered, throttled twice, normal, no
    receipt). Runs until Ctrl-C or SIGTERM, then unbinds every session.

    \b
    Example:
      dakghar simulator --port 2775 --receipt-delay-ms 100-500 --delivery-rate 0.95
    """
    config_path = config_path or (ctx.find_root().obj or {}).get("config")  # 'dakghar --config'
    config = build_config(config_path, **options)
    configure_logging(log_level)
    try:
        sim = _run_loop(config)
    except OSError as exc:  # the port is taken, or the address is not ours
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
    stats = sim.stats
    click.echo(
        f"stopped: {stats.binds} binds, {stats.submits} submits, {stats.accepted} accepted, "
        f"{stats.receipts_sent} receipts sent ({stats.receipts_acked} acknowledged)"
    )


def _run_loop(config: SimulatorConfig) -> Simulator:
    """Run on uvloop where it is installed (the simulator is a benchmark sink), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(config))
    return uvloop.run(run(config))
