"""``dakghar serve``: the API (and the pipeline's parts as they come) in one process."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import click
import uvicorn

from dakghar import __version__
from dakghar.api.app import Component, create_app
from dakghar.api.services import Services
from dakghar.core.keys import generate_key, parse_key, verify_key
from dakghar.observability.logging import configure_logging, get_logger
from dakghar.settings import Settings, SettingsError, ensure_secret_key, load_settings
from dakghar.store.base import ApiKey, now_ms

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
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(new.key + "\n")
    return new.key


def demo_component(url: str) -> Component:
    """A start-up part that prints where to go and which key to use."""

    async def start(svc: Services) -> Callable[[], Awaitable[None]]:
        key = await ensure_demo(svc)
        demo = await svc.store.find_account_by_name(DEMO_ACCOUNT)
        account_id = demo.id if demo else DEMO_ACCOUNT
        click.echo(
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
            """      -d '{"to": "+919812345678", "body": "Hello from Dakghar"}'\n""",
            err=False,
        )

        async def stop() -> None:
            return None

        return stop

    return start


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
    help="Create (once) a demo account with a sandbox key, and print the key and URL.",
)
@click.option(
    "--no-delivery",
    is_flag=True,
    help="Accept and store messages but start no dispatcher, connectors or simulator "
    "(messages stay queued; for measuring the accept path alone).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    config: str | None,
    demo: bool,
    no_delivery: bool,
) -> None:
    """Run the gateway: REST API, store, dispatcher, connectors and simulated carrier.

    Sandbox (test_) keys reach only the built-in simulated carrier; live keys go through the
    connectors and routes of the config file. SIGHUP re-reads the routes.
    """
    config = config or (ctx.find_root().obj or {}).get("config")
    try:
        settings: Settings = ensure_secret_key(load_settings(config, host=host, port=port))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_format)
    url = f"http://{settings.host}:{settings.port}"
    components: list[Component] = []
    if not no_delivery:
        # Imported here so that the admin commands start without loading the SMPP stack.
        from dakghar.pipeline.runtime import delivery_component

        components.append(delivery_component(settings, reload_on_hup=True, config_path=config))
    from dakghar.observability.alerts import alerts_component

    try:
        components.append(alerts_component(settings))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if demo:
        components.append(demo_component(url))
    app = create_app(settings, components=components)
    get_logger("dakghar.serve").info("starting", url=url, database=settings.database_url)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - Windows
        loop = "asyncio"
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
