"""``dakghar serve``: checks the config, binds the listeners and runs one role of the gateway.

Every role composes the one :class:`dakghar.gateway.Gateway`: the API (through
``api.app.create_app``) with the delivery side inline, in a child process, or run apart; or
(``--role dispatcher``) the delivery side alone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
import msgspec

from dakghar import __version__
from dakghar.api.app import create_app
from dakghar.api.listener import ListenError, StartupFailed, bind, hostport, tls_context
from dakghar.api.listener import serve as run_server
from dakghar.api.metrics_access import MetricsAccess, is_loopback, metrics_host
from dakghar.api.services import Services
from dakghar.core.files import write_private
from dakghar.core.heap import settle_heap
from dakghar.core.keys import generate_key, parse_key, verify_key
from dakghar.gateway import Component, DeliveryMode
from dakghar.observability.logging import configure_logging, get_logger
from dakghar.settings import PID_FILE, Settings, SettingsError, ensure_secret_key, load_settings
from dakghar.store.base import ApiKey, now_ms

if TYPE_CHECKING:
    from dakghar.pipeline.runtime import DeliveryPlan

DEMO_ACCOUNT = "demo"
DEMO_KEY_FILE = "dakghar-demo.key"


async def ensure_demo(svc: Services) -> str:
    """Create the demo account and its sandbox key once; return the key.

    Keys are stored hashed, so the demo key is also kept in the data directory (mode 0600) to be
    printed again on later starts. It is a sandbox key: it can only reach the simulated carrier.
    """
    store, settings = svc.store, svc.settings
    key_file = Path(settings.data_dir) / DEMO_KEY_FILE
    account = await store.find_account_by_name(DEMO_ACCOUNT)
    if account is None:
        account = await store.create_account(
            name=DEMO_ACCOUNT,
            balance_milli=1_000_000,
            default_sender="DKGHAR",
            rate_per_second=settings.api.key_rate_per_second,
            rate_burst=settings.api.key_burst,
        )
    if key_file.exists():
        key = key_file.read_text().strip()
        parsed = parse_key(key)
        stored = await store.get_api_key(parsed[1]) if parsed else None
        if (
            stored
            and stored.account_id == account.id
            and stored.revoked_at is None
            and verify_key(settings.secret, key, stored.key_hash)
        ):
            return key
    new = generate_key(settings.secret, "test")
    await store.create_api_key(
        ApiKey(new.key_id, account.id, "test", new.key_hash, "demo", now_ms(), None)
    )
    # Whole or not at all: a script waiting for the file must never read it empty.
    write_private(key_file, (new.key + "\n").encode())
    return new.key


class DemoBanner:
    """The ``--demo`` start-up part and the banner it prints once the server is serving.

    The key is made (or read back) during start-up, with the store open; the banner waits for
    the listener, so that "is running" is never printed by a gateway that is not.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.text: str | None = None

    async def component(self, svc: Services) -> Callable[[], Awaitable[None]]:
        """A start-up part: ensure the demo account and key, and compose the banner."""
        key = await ensure_demo(svc)
        demo = await svc.store.find_account_by_name(DEMO_ACCOUNT)
        account_id = demo.id if demo else DEMO_ACCOUNT
        url = self.url
        self.text = (
            f"\nDakghar {__version__} is running (sandbox demo).\n"
            f"  API:       {url}\n"
            f"  API docs:  {url}/docs   (OpenAPI: {url}/openapi.json)\n"
            f"  Dashboard: {url}/dashboard   (open it with an admin key:\n"
            f"             .venv/bin/dakghar keys create {account_id} --sandbox --admin)\n"
            f"  Demo key:  {key}\n"
            "             (sandbox: messages only ever reach the built-in simulated carrier)\n"
            "  Try it:\n"
            f"    curl -s {url}/v1/messages -H 'Authorization: Bearer {key}' \\\n"
            "      -H 'Content-Type: application/json' \\\n"
            """      -d '{"to": "+919812345678", "body": "Hello from Dakghar"}'\n"""
        )

        async def stop() -> None:
            return None

        return stop

    def show(self) -> None:
        """Print the banner (called once the server accepts requests)."""
        if self.text is not None:
            click.echo(self.text)


class StartupError(click.ClickException):
    """A refusal to start, shown as one line: ``dakghar: error: <what, naming the setting>``."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"dakghar: error: {self.format_message()}", file=file or sys.stderr)


def pid_file_component(path: Path) -> Component:
    """A start-up part that writes this process's pid where ``dakghar reload`` finds it, and
    removes it at shutdown (unless a newer gateway on the same data directory wrote its own)."""

    async def start(svc: Services) -> Callable[[], Awaitable[None]]:
        path.write_text(f"{os.getpid()}\n")

        async def stop() -> None:
            with contextlib.suppress(OSError, ValueError):
                if int(path.read_text()) == os.getpid():
                    path.unlink()

        return stop

    return start


def check_config(settings: Settings, *, delivery: bool) -> DeliveryPlan | None:
    """The delivery plan (connectors, router, simulated carrier) when this process delivers or
    sees a delivery process, built once here so that errors come first.

    No connection is opened by a constructor, so a bad table is one line before any socket,
    store or banner; the gateway then runs these very objects instead of building them again.
    """
    if not delivery:
        return None
    from dakghar.pipeline.runtime import DeliveryPlan

    return DeliveryPlan.from_settings(settings)


def describe(exc: BaseException) -> str:
    """One line for a start-up failure: the message alone when it already names the setting."""
    if isinstance(exc, SettingsError | ValueError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"start-up failed: {type(exc).__name__}" + (f": {first}" if first else "")


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port to listen on (default 8080)."
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default: ./dakghar.toml if present).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Create (once) a demo account with a sandbox key, and print the key and URL. Also "
    "allows callback URLs on loopback and private networks ([webhooks] "
    "allow_private_networks), so a webhook receiver on this machine works.",
)
@click.option(
    "--role",
    type=click.Choice(["all", "api", "dispatcher"]),
    default="all",
    show_default=True,
    help="all: the whole gateway (the API here, the delivery side in a second process it "
    'starts and watches, or inline with [server] delivery = "inline"); api: the REST API '
    "alone; dispatcher: the delivery side alone (dispatcher, connectors, simulator, webhooks; "
    "no HTTP listener). One dispatcher runs per SQLite store.",
)
@click.option(
    "--no-delivery",
    is_flag=True,
    help="Accept and store messages but start no dispatcher, connectors or simulator "
    "(messages stay queued; for measuring the accept path alone).",
)
@click.option(
    "--tls-cert",
    envvar="DAKGHAR_TLS_CERT",
    show_envvar=True,
    default=None,
    help="PEM certificate chain: serve the API over HTTPS (with --tls-key; [server] tls_cert).",
)
@click.option(
    "--tls-key",
    envvar="DAKGHAR_TLS_KEY",
    show_envvar=True,
    default=None,
    help="PEM private key of --tls-cert, without a passphrase ([server] tls_key).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    config: str | None,
    demo: bool,
    role: str,
    no_delivery: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Run the gateway: REST API, store, dispatcher, connectors and simulated carrier.

    Sandbox (test_) keys reach only the built-in simulated carrier; live keys go through the
    connectors and routes of the config file. SIGHUP re-reads the routes.

    By default the delivery side runs in a second process, so that the gateway uses two
    cores; `dakghar status` shows both processes.

    A bad setting or a port in use stops it with one line on stderr and a non-zero exit.
    """
    config = config or (ctx.find_root().obj or {}).get("config")
    inherited: Settings | None = None
    if role == "dispatcher":
        from dakghar.pipeline.process import inherited_settings

        inherited = inherited_settings()  # started by `serve`: the settings it validated
    try:
        settings: Settings = inherited or ensure_secret_key(
            load_settings(config, host=host, port=port)
        )
    except SettingsError as exc:
        raise StartupError(describe(exc)) from exc
    if demo:
        # The README's demo posts status callbacks to a receiver on localhost.
        webhooks = msgspec.structs.replace(settings.webhooks, allow_private_networks=True)
        settings = msgspec.structs.replace(settings, webhooks=webhooks)
    if tls_cert or tls_key:  # the flag (or its variable) wins over the file, as --port does
        given = {k: v for k, v in {"tls_cert": tls_cert, "tls_key": tls_key}.items() if v}
        server = msgspec.structs.replace(settings.server, **given)
        settings = msgspec.structs.replace(settings, server=server)
    configure_logging(settings.log_level, settings.log_format)
    if role == "dispatcher":
        _run_dispatcher(settings, config)
        return
    mode: DeliveryMode = "remote" if role == "api" else settings.server.delivery
    if no_delivery and role != "api":
        mode = "none"
    from dakghar.coord import check_queue_url
    from dakghar.observability.alerts import parse_rules
    from dakghar.store import check_database_url

    try:
        plan = check_config(settings, delivery=mode != "none")
        parse_rules(settings.alerts)
        check_queue_url(settings)
        check_database_url(settings)
        MetricsAccess.from_settings(settings)  # the token variable and the listener's settings
        tls = tls_context(settings.server)
    except (SettingsError, ValueError) as exc:
        raise StartupError(describe(exc)) from exc
    # Bound before anything starts: a port in use is one line, with no key made or banner shown.
    sockets: list[socket.socket] = []
    try:
        sockets.append(bind(settings.host, settings.port))
        if settings.metrics.port is not None:
            sockets.append(bind(metrics_host(settings), settings.metrics.port))
    except ListenError as exc:
        for sock in sockets:
            sock.close()
        raise StartupError(str(exc)) from exc
    api_host, api_port = sockets[0].getsockname()[:2]
    metrics_port = sockets[1].getsockname()[1] if len(sockets) > 1 else None
    access = MetricsAccess.from_settings(settings, api_host=api_host, metrics_port=metrics_port)
    url = f"{'https' if tls else 'http'}://{hostport(settings.host, api_port)}"
    argv: list[str] | None = None
    if mode == "process":
        argv = [sys.executable, "-m", "dakghar", "serve", "--role", "dispatcher",
                "--host", settings.host, "--port", str(api_port)]  # fmt: skip
        argv += ["--config", config] if config else []
        argv += ["--demo"] if demo else []
    components: list[Component] = [pid_file_component(Path(settings.data_dir) / PID_FILE)]
    on_started: list[Callable[[], None]] = [settle_heap]
    if demo:
        banner = DemoBanner(url)
        components.append(banner.component)
        on_started.append(banner.show)
    app = create_app(
        settings,
        delivery=mode,
        plan=plan,
        delivery_argv=argv,
        alerts=True,
        reload_on_hup=True,
        config_path=config,
        components=components,
        metrics_access=access,
    )
    log = get_logger("dakghar.serve")
    log.info("starting", url=url, database=settings.database_url, role=role, delivery=mode)
    if metrics_port is not None:
        mhost = metrics_host(settings)
        log.info("metrics listener", url=f"http://{hostport(mhost, metrics_port)}/metrics")
        if access.token is None and not is_loopback(mhost):
            log.warning("metrics listener open to every peer that reaches it", host=mhost)
    with contextlib.ExitStack() as stack:
        if mode == "inline":
            from dakghar.pipeline.process import embedded_lock

            try:  # one dispatcher per embedded store: this process is it
                stack.enter_context(embedded_lock(settings))
            except RuntimeError as exc:
                raise StartupError(str(exc)) from exc
        try:
            run_server(app, sockets, settings.server, on_started, tls)
        except StartupFailed as exc:
            from dakghar.pipeline.process import DeliveryFailed

            if isinstance(exc.error, DeliveryFailed):
                sys.exit(1)  # its one line is on stderr already
            raise StartupError(describe(exc.error)) from exc


def _run_dispatcher(settings: Settings, config: str | None) -> None:
    """``--role dispatcher``: the delivery side alone, in this process."""
    from dakghar.gateway import Gateway
    from dakghar.pipeline.process import run_dispatcher

    try:
        plan = check_config(settings, delivery=True)
    except (SettingsError, ValueError) as exc:
        raise StartupError(describe(exc)) from exc

    async def open_gateway() -> Gateway:
        return await Gateway.open(
            settings, role="dispatcher", plan=plan, reload_on_hup=True, config_path=config
        )

    try:
        run_dispatcher(settings, open_gateway)
    except (SettingsError, ValueError, RuntimeError, OSError) as exc:
        raise StartupError(describe(exc)) from exc
    except KeyboardInterrupt:
        pass
