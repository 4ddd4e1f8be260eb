"""Who may read ``GET /metrics``, and on which listener (docs/observability.md, "Access").

- ``[metrics] token_env = "NAME"``: every request needs ``Authorization: Bearer <$NAME>``,
  compared in constant time; anything else is answered 401. A name that is unset (or empty) is a
  start-up error, never an open endpoint.
- No token, ``/metrics`` on the API's listener: open when that listener is bound to loopback;
  when it is bound beyond loopback (``0.0.0.0``, a public address), only loopback peers are
  answered and the others get 403. Metrics name connectors, carriers and queue depths: enough to
  map a deployment, so they are not published on the API's public port by default.
- ``[metrics] port`` (and ``host``, 127.0.0.1 by default): ``/metrics`` is served on that
  listener only; there, every other path is 404, and on the API's listener ``/metrics`` is 404.
  Binding it beyond loopback is the operator's explicit choice of who may scrape, so its peers are
  not filtered (a token still applies when set).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dakghar.api.problems import problem_response
from dakghar.settings import Settings, SettingsError

METRICS_PATH = "/metrics"
DEFAULT_METRICS_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, or ``localhost``) is a loopback address."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name other than localhost: assume it is reachable from elsewhere
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True, kw_only=True)
class MetricsAccess:
    """The access rule for ``/metrics``; see the module docstring."""

    token: bytes | None = None
    # No token and the API listens beyond loopback: answer loopback peers only.
    loopback_only: bool = False
    # Local ports of a dedicated metrics listener (empty: /metrics is on the API's listener).
    listener_ports: frozenset[int] = frozenset()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        env: Mapping[str, str] | None = None,
        api_host: str | None = None,
        metrics_port: int | None = None,
    ) -> MetricsAccess:
        """The rule for ``settings``; ``api_host``/``metrics_port`` are the addresses bound.

        Raises :class:`SettingsError` naming the setting at fault.
        """
        env = os.environ if env is None else env
        section = settings.metrics
        token: bytes | None = None
        if section.token_env is not None:
            value = env.get(section.token_env, "")
            if not value:
                raise SettingsError(
                    f"metrics: token_env names {section.token_env!r}, which is not set"
                )
            token = value.encode()
        check_listener(settings)
        port = metrics_port if metrics_port is not None else section.port
        dedicated = section.port is not None and port is not None
        return cls(
            token=token,
            loopback_only=token is None
            and not dedicated
            and not is_loopback(api_host or settings.host),
            listener_ports=frozenset({port}) if dedicated and port is not None else frozenset(),
        )

    def on_metrics_listener(self, scope: Scope) -> bool:
        """Whether the request came in on the dedicated metrics listener."""
        server = scope.get("server")
        return bool(self.listener_ports) and server is not None and server[1] in self.listener_ports

    def refusal(self, request: Request) -> Response | None:
        """The answer to a ``/metrics`` request that may not read them, or None if it may."""
        if self.listener_ports and not self.on_metrics_listener(request.scope):
            return _not_found()
        if self.token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.token
            ):
                return problem_response(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "/metrics needs Authorization: Bearer with the metrics token",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
            return None
        if self.loopback_only:
            client = request.client
            if client is None or not is_loopback(client.host):
                return problem_response(
                    403,
                    "forbidden",
                    "Forbidden",
                    "/metrics answers loopback peers only unless [metrics] token_env is set",
                )
        return None


def check_listener(settings: Settings) -> None:
    """Refuse a ``[metrics]`` listener that cannot work, naming the setting."""
    section = settings.metrics
    if section.host is not None and section.port is None:
        raise SettingsError("metrics: host is set but port is not; set port for the listener")
    if section.port is not None:
        if not 0 <= section.port <= 65535:
            raise SettingsError(f"metrics: port {section.port} is not between 0 and 65535")
        if section.port != 0 and section.port == settings.port:
            raise SettingsError(
                f"metrics: port {section.port} is the API's port; give the metrics listener its own"
            )


def metrics_host(settings: Settings) -> str:
    """Where the dedicated metrics listener binds."""
    return settings.metrics.host or DEFAULT_METRICS_HOST


def _not_found() -> Response:
    return problem_response(404, "not_found", "Not found", "Not Found")


class MetricsListenerOnly:
    """On the dedicated metrics listener, answer 404 to everything but ``/metrics``."""

    def __init__(self, app: ASGIApp, access: MetricsAccess) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("path") != METRICS_PATH
            and self.access.on_metrics_listener(scope)
        ):
            await _not_found()(scope, receive, send)
            return
        await self.app(scope, receive, send)
