"""What the simulated carrier does, as data: behaviours by destination prefix, magic numbers.

``SimulatorConfig`` is the ``[simulator]`` table of dakghar.toml (``from_settings`` checks it and
names any bad key) or is built directly by tests and benchmarks; ``Behaviour`` is how the carrier
treats one destination prefix (latency, outcome shares, throttling). The magic numbers are the
sandbox outcomes of API.md. ``simulator`` (the server) and ``cli`` (``dakghar simulator``) read
these; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

# API.md "Sandbox magic numbers": outcomes a sandbox user can trigger on purpose.
MAGIC_REJECTED = "+917000000001"  # submit_sm_resp ESME_RSUBMITFAIL
MAGIC_UNDELIVERED = "+917000000002"  # accepted, receipt UNDELIV
MAGIC_THROTTLED_TWICE = "+917000000003"  # ESME_RTHROTTLED twice per (number, text), then delivered
MAGIC_DND = "+917000000004"  # a normal number here: the gateway enforces DND, not the carrier
MAGIC_NO_RECEIPT = "+917000000005"  # accepted, and no receipt ever comes
MAGIC_NUMBERS: dict[str, str] = {
    MAGIC_REJECTED: "submit_sm_resp ESME_RSUBMITFAIL (0x45): permanent rejection",
    MAGIC_UNDELIVERED: "accepted, then a receipt with stat UNDELIV",
    MAGIC_THROTTLED_TWICE: "ESME_RTHROTTLED (0x58) twice for the same text, then delivered",
    MAGIC_DND: "delivered as usual (DND is enforced by the gateway, not the carrier)",
    MAGIC_NO_RECEIPT: "accepted, and no delivery receipt ever arrives",
}


def e164(address: str) -> str:
    """The destination as E.164 for rule matching: a '+' is added when missing."""
    address = address.strip()
    return address if address.startswith("+") else "+" + address


def _span(name: str, value: Any) -> tuple[float, float]:
    """A (low, high) pair of non-negative milliseconds, from a tuple or a TOML list."""
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(_is_number(v) for v in value)
    ):
        raise ValueError(f"{name} must be two numbers [low, high] in milliseconds, not {value!r}")
    low, high = float(value[0]), float(value[1])
    if not 0 <= low <= high:
        raise ValueError(f"{name} must satisfy 0 <= low <= high, not {value!r}")
    return low, high


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Behaviour:
    """How the carrier treats a destination: latency, outcome shares, throttling."""

    accept_latency_ms: tuple[float, float] = (0.0, 0.0)
    delivery_rate: float = 1.0
    receipt_delay_ms: tuple[float, float] = (200.0, 800.0)
    throttle_tps: float | None = None
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    carrier: str | None = None

    def __post_init__(self) -> None:
        for name in ("accept_latency_ms", "receipt_delay_ms"):
            object.__setattr__(self, name, _span(name, getattr(self, name)))
        for name in ("delivery_rate", "error_rate", "timeout_rate", "drop_rate"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number between 0 and 1, not {value!r}")
        if self.error_rate + self.timeout_rate + self.drop_rate > 1.0:
            raise ValueError("error_rate + timeout_rate + drop_rate must not exceed 1")
        tps = self.throttle_tps
        if tps is not None and (not _is_number(tps) or tps <= 0):
            raise ValueError(f"throttle_tps must be a positive number, not {tps!r}")
        if self.carrier is not None and not isinstance(self.carrier, str):
            raise ValueError(f"carrier must be a string, not {self.carrier!r}")


_BEHAVIOUR_KEYS = frozenset(f.name for f in fields(Behaviour))


@dataclass(frozen=True)
class SimulatorConfig:
    """Where the simulator listens, whom it lets bind, and how it behaves per destination prefix."""

    host: str = "127.0.0.1"
    port: int = 2775  # 0: any free port
    system_id: str | None = None  # None: any system_id may bind
    password: str | None = None  # None: any password
    default: Behaviour = Behaviour()
    rules: tuple[tuple[str, Behaviour], ...] = ()  # E.164 prefix -> behaviour; longest wins
    magic_numbers: bool = True
    seed: int | None = None
    receipt_retry_ms: float = 5000.0  # wait before re-sending a refused or unanswered receipt
    receipt_ack_timeout_ms: float = 10000.0  # deliver_sm_resp later than this counts as lost
    max_pending_receipts: int = 100_000  # per system_id, kept while no receiver is bound
    # Listener limits: the in-process simulator shares the gateway's file descriptors, so
    # connections that never bind, or too many from one address, must not pile up.
    unbound_timeout_seconds: float = 10.0  # a connection not bound by then is closed
    max_connections_per_ip: int = 50  # concurrent connections from one address; more are closed
    max_connections: int = 500  # concurrent connections in all; more are closed at once

    def __post_init__(self) -> None:
        rules = []
        for prefix, behaviour in self.rules:
            digits = prefix.removeprefix("+")
            if not digits.isdigit():
                raise ValueError(
                    f"rule prefix must be '+' and digits, like '+9198', not {prefix!r}"
                )
            rules.append(("+" + digits, behaviour))
        object.__setattr__(self, "rules", tuple(rules))
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if self.receipt_retry_ms <= 0 or self.receipt_ack_timeout_ms <= 0:
            raise ValueError("receipt_retry_ms and receipt_ack_timeout_ms must be positive")
        if self.max_pending_receipts < 1:
            raise ValueError("max_pending_receipts must be at least 1")
        timeout = self.unbound_timeout_seconds
        if not _is_number(timeout) or timeout <= 0:
            raise ValueError(f"unbound_timeout_seconds must be positive, not {timeout!r}")
        for name in ("max_connections_per_ip", "max_connections"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
        if self.max_connections_per_ip > self.max_connections:
            raise ValueError("max_connections_per_ip must not exceed max_connections")

    def behaviour_for(self, e164: str) -> Behaviour:
        """The behaviour of the longest rule prefix matching ``e164``, else the default."""
        best, best_length = self.default, 0
        for prefix, behaviour in self.rules:
            if len(prefix) > best_length and e164.startswith(prefix):
                best, best_length = behaviour, len(prefix)
        return best

    @classmethod
    def from_settings(cls, table: Mapping[str, Any]) -> SimulatorConfig:
        """The configuration in the ``[simulator]`` table; ``ValueError`` names a bad key."""
        unknown = set(table) - _CONFIG_KEYS - _BEHAVIOUR_KEYS - {"rules"}
        if unknown:
            known = ", ".join(sorted(_CONFIG_KEYS | _BEHAVIOUR_KEYS | {"rules"}))
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}; known keys: {known}")
        default = _behaviour({k: v for k, v in table.items() if k in _BEHAVIOUR_KEYS}, Behaviour())
        rules = []
        raw_rules = table.get("rules", [])
        if not isinstance(raw_rules, list):
            raise ValueError("rules must be a list of tables ([[simulator.rules]])")
        for i, rule in enumerate(raw_rules):
            if not isinstance(rule, Mapping) or not isinstance(rule.get("prefix"), str):
                raise ValueError(f"rules[{i}] needs a prefix such as '+9198'")
            extra = set(rule) - _BEHAVIOUR_KEYS - {"prefix"}
            if extra:
                raise ValueError(f"rules[{i}]: unknown key(s) {', '.join(sorted(extra))}")
            try:
                behaviour = _behaviour({k: v for k, v in rule.items() if k != "prefix"}, default)
            except ValueError as exc:
                raise ValueError(f"rules[{i}]: {exc}") from exc
            rules.append((rule["prefix"], behaviour))
        values = {k: table[k] for k in _CONFIG_KEYS if k in table}
        for key, value in values.items():
            wanted = _CONFIG_TYPES[key]
            if not isinstance(value, wanted) or (isinstance(value, bool) and wanted is not bool):
                raise ValueError(f"{key} has the wrong type: {value!r}")
        return cls(default=default, rules=tuple(rules), **values)


_CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "system_id": str,
    "password": str,
    "magic_numbers": bool,
    "seed": int,
    "receipt_retry_ms": (int, float),
    "receipt_ack_timeout_ms": (int, float),
    "max_pending_receipts": int,
    "unbound_timeout_seconds": (int, float),
    "max_connections_per_ip": int,
    "max_connections": int,
}
_CONFIG_KEYS = frozenset(_CONFIG_TYPES)


def _behaviour(values: Mapping[str, Any], base: Behaviour) -> Behaviour:
    """``base`` with the settings in ``values`` (rules inherit the top-level behaviour)."""
    return replace(base, **values)
