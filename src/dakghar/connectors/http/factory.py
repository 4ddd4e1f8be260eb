"""Builds an HTTP provider connector from its ``[[connectors]]`` table.

Common keys (every provider): ``name``, ``type``, ``base_url`` (the provider's API by default;
tests point it at a local server), ``rate``, ``max_in_flight``, ``timeout``, ``connect_timeout``,
``status_callback_url``, ``callback_secret_env`` and ``balance_interval``. Provider keys are the
fields of its config class; a secret field ``x`` is only ever given as ``x_env``, the name of an
environment variable, so no credential sits in ``dakghar.toml``. Unknown keys are refused by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from typing import Any

from dakghar.connectors.base import Connector
from dakghar.connectors.http.base import HttpSettings, callback_url
from dakghar.connectors.http.msg91 import Msg91Config, Msg91Connector
from dakghar.connectors.http.plivo import PlivoConfig, PlivoConnector
from dakghar.connectors.http.twilio import TwilioConfig, TwilioConnector
from dakghar.connectors.http.vonage import VonageConfig, VonageConnector

# type -> (config class, its secret fields, default base URL, connector class)
PROVIDERS: dict[str, tuple[type[Any], frozenset[str], str, Callable[..., Connector]]] = {
    "twilio": (TwilioConfig, frozenset({"auth_token"}), "https://api.twilio.com", TwilioConnector),
    "msg91": (Msg91Config, frozenset({"authkey"}), "https://control.msg91.com", Msg91Connector),
    "plivo": (PlivoConfig, frozenset({"auth_token"}), "https://api.plivo.com", PlivoConnector),
    "vonage": (
        VonageConfig,
        frozenset({"api_secret", "signature_secret"}),
        "https://rest.nexmo.com",
        VonageConnector,
    ),
}
HTTP_TYPES = frozenset(PROVIDERS)
_COMMON = {f.name for f in fields(HttpSettings)} - {"callback_secret"}


def build_http_connector(name: str, table: Mapping[str, Any]) -> Connector:
    """The connector ``table`` describes; ValueError names what is wrong."""
    kind = table.get("type")
    if kind not in PROVIDERS:
        raise ValueError(f"type must be one of {sorted(PROVIDERS)}")
    config_cls, secrets, default_url, connector_cls = PROVIDERS[kind]
    own = {f.name for f in fields(config_cls)}
    allowed = (
        {"name", "type", "callback_secret_env"}
        | _COMMON
        | (own - secrets)
        | {f"{s}_env" for s in secrets}
    )
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; known: {sorted(allowed)}")
    common = {k: table[k] for k in _COMMON if k in table}
    common.setdefault("base_url", default_url)
    callback_secret = _env(table, "callback_secret_env")
    if callback_secret and common.get("status_callback_url"):
        common["status_callback_url"] = callback_url(common["status_callback_url"], callback_secret)
    values = {k: table[k] for k in own - secrets if k in table}
    for secret in secrets:
        value = _env(table, f"{secret}_env")
        if value is not None:
            values[secret] = value
    required = [f.name for f in fields(config_cls) if f.default is MISSING and f.name not in values]
    if required:
        keys = [f"{r}_env" if r in secrets else r for r in required]
        raise ValueError(f"{keys} required")
    try:
        settings = HttpSettings(**common, callback_secret=callback_secret)
        config = config_cls(**values)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
    if settings.max_in_flight < 1 or settings.timeout <= 0 or settings.rate < 0:
        raise ValueError("max_in_flight must be >= 1, timeout > 0 and rate >= 0")
    return connector_cls(name, settings, config)


def _env(table: Mapping[str, Any], key: str) -> str | None:
    env = table.get(key)
    if env is None:
        return None
    if not isinstance(env, str) or env not in os.environ:
        raise ValueError(f"{key} names {env!r}, which is not set")
    return os.environ[env]
