"""The one typed settings object.

Read from ``dakghar.toml`` (if present) and ``DAKGHAR_*`` environment variables, the environment
winning (API.md, "Command line"). Everything else receives the ``Settings`` it needs from the app
factory; nothing reads the environment on its own.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from dakghar.core.files import write_private


class ApiSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """HTTP API limits."""

    max_body_bytes: int = 2 * 1024 * 1024
    # Per-key request rate (requests per second) and burst given to accounts created without
    # their own (`dakghar accounts create --rate/--burst`, `serve --demo`).
    key_rate_per_second: int = 200
    key_burst: int = 400
    idempotency_ttl_seconds: int = 24 * 3600


class ServerSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Limits of the HTTP listener, so idle and slow clients cannot exhaust it."""

    max_connections: int = 2000  # open connections at once; more are answered 503 and closed
    # A request's headers must arrive within this of the connection opening (or, on a kept-alive
    # connection, of the request's first byte); else the connection is closed.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0  # and its body within this of the headers
    keep_alive_seconds: float = 5.0  # an idle keep-alive connection is closed after this (whole s)
    # Where `dakghar serve` runs the delivery side (dispatcher, connectors, simulator, webhooks):
    # "process", a second process beside the API's (both cores of the box; the default), or
    # "inline", inside the API's own process (one process, one core).
    delivery: Literal["process", "inline"] = "process"
    # Niceness the delivery side adds to its own CPU priority (the delivery process of `serve`,
    # and `serve --role dispatcher`), so that where several dispatchers share cores with the
    # API and the database, callers' requests are answered first and the queue absorbs the lag.
    # 0 (the default): as started. README, "Processes", has the measured trade-off.
    delivery_nice: Annotated[int, msgspec.Meta(ge=0, le=19)] = 0
    # HTTPS on the API's listener: a PEM certificate chain and its (unencrypted) private key.
    # Both or neither; `serve --tls-cert/--tls-key` and DAKGHAR_TLS_CERT/DAKGHAR_TLS_KEY win.
    tls_cert: str | None = None
    tls_key: str | None = None


class WebhookSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Outbound webhooks (status, inbound and alert callbacks)."""

    # Callback URLs may point at loopback, private, link-local or the gateway's own addresses
    # only when this is on (``serve --demo`` turns it on for the README's local receiver).
    allow_private_networks: bool = False
    timeout_seconds: float = 10.0


class MetricsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Who may read ``GET /metrics``."""

    # Name of an environment variable holding a bearer token; when set, /metrics needs it.
    token_env: str | None = None
    # Serve /metrics on its own listener (e.g. an internal interface) instead of the API's.
    host: str | None = None
    port: int | None = None


class StoreSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Embedded store tuning: how long the writer waits to gather a group commit."""

    group_commit_max_batch: int = 2000
    # How long the writer waits after an operation for others to join its commit. Short: with
    # the API and the delivery side in two processes, an accept already waits for the other's
    # transactions, and those it can join (store.sql.writer.LATE_JOIN_WAIT).
    group_commit_max_wait_ms: Annotated[float, msgspec.Meta(ge=0)] = 0.5
    # SQLite: a transaction takes no more operations once it has held the write lock this long,
    # so the other process (an API's accept, an OTP's claim) waits for at most about this.
    group_commit_max_hold_ms: Annotated[float, msgspec.Meta(ge=0)] = 8.0  # 0: no cap
    synchronous: str = "NORMAL"  # SQLite PRAGMA synchronous under WAL: durable against crashes
    count_statements: bool = False  # count the writer's statements (bench/store_ops.py)


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """All of Dakghar's configuration."""

    database_url: str = "sqlite:///./dakghar.db"
    queue_url: str | None = None
    # Prefix of every Redis key and channel of the coordination layer, so fleets can share a server.
    queue_prefix: str = "dakghar:"
    secret_key: str | None = None
    data_dir: str = "."
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    log_format: str = "auto"  # auto | json | console
    api: ApiSettings = msgspec.field(default_factory=ApiSettings)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    webhooks: WebhookSettings = msgspec.field(default_factory=WebhookSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    # Sections owned by later parts (simulator, connectors, routes, alerts) are kept as raw tables
    # so that a config written for a newer version still loads.
    simulator: dict[str, Any] = msgspec.field(default_factory=dict)
    connectors: list[dict[str, Any]] = msgspec.field(default_factory=list)
    routes: list[dict[str, Any]] = msgspec.field(default_factory=list)
    alerts: list[dict[str, Any]] = msgspec.field(default_factory=list)

    @property
    def secret(self) -> bytes:
        """The server secret as bytes (set by :func:`ensure_secret_key`)."""
        if not self.secret_key:
            raise RuntimeError("secret_key is not set; call ensure_secret_key() first")
        return self.secret_key.encode()


_ENV_FIELDS = {
    "DAKGHAR_DATABASE_URL": "database_url",
    "DAKGHAR_QUEUE_URL": "queue_url",
    "DAKGHAR_QUEUE_PREFIX": "queue_prefix",
    "DAKGHAR_SECRET_KEY": "secret_key",
    "DAKGHAR_DATA_DIR": "data_dir",
    "DAKGHAR_HOST": "host",
    "DAKGHAR_PORT": "port",
    "DAKGHAR_LOG_LEVEL": "log_level",
    "DAKGHAR_LOG_FORMAT": "log_format",
}


# Written by `dakghar serve` into the data directory every 2 s; read by `dakghar status`.
STATE_FILE = "dakghar-state.json"
# The pid of the `dakghar serve` using this data directory; `dakghar reload` signals it.
PID_FILE = "dakghar.pid"


class SettingsError(Exception):
    """The configuration file or environment is malformed."""


def load_settings(
    config: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from a TOML file, the environment and explicit overrides (in that order)."""
    env = dict(os.environ) if env is None else env
    raw: dict[str, Any] = {}
    path = Path(config) if config else Path(env.get("DAKGHAR_CONFIG", "dakghar.toml"))
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
    elif config:
        raise SettingsError(f"config file not found: {path}")
    for var, field in _ENV_FIELDS.items():
        if env.get(var):
            raw[field] = env[var]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid configuration: {exc}") from exc


def ensure_secret_key(settings: Settings) -> Settings:
    """Use ``DAKGHAR_SECRET_KEY`` or the data directory's key file, creating it on first start."""
    if settings.secret_key:
        return settings
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "dakghar.secret"
    if not key_file.exists():
        # Exclusive, so two processes starting at once cannot write different keys; and whole,
        # so the one that lost never reads the winner's file before its key is in it.
        write_private(key_file, secrets.token_urlsafe(48).encode(), exclusive=True)
    key = key_file.read_text().strip()
    return msgspec.structs.replace(settings, secret_key=key)
