"""Routing: which connectors a message goes through, in what order.

Rules come from ``[[routes]]`` in dakghar.toml, first match wins (so put specific rules first and
a catch-all last). A rule matches on any of ``country`` (ISO code), ``prefix`` (E.164), ``carrier``
(as detected at accept), ``type`` (otp | transactional | promotional) and ``account`` (id or
name); each may be one value or a list, and every key given must match. Its ``connectors`` list
is the failover order. Consecutive entries with a ``weight`` form a split group: the message
goes first to one of them picked by weight, then to the others of the group, then on down the
list. Example::

    [[routes]]
    country = "IN"
    type = ["otp", "transactional"]
    connectors = [{name = "airtel", weight = 70}, {name = "jio", weight = 30}, "msg91"]

A message that matches no rule fails with ``no_route``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dakghar.core.numbers import mask

MATCH_KEYS = ("country", "prefix", "carrier", "type", "account")
# The built-in simulated carrier: only sandbox (test_) traffic goes there, never a route's.
SANDBOX_CONNECTOR = "simulator"
TYPES = frozenset({"otp", "transactional", "promotional"})


class NoRoute(Exception):
    """No rule matches the message."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class RoutingInput:
    """What routing looks at."""

    to: str  # E.164
    country: str | None
    carrier: str | None
    type: str
    account_id: str
    account_name: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """Connectors that split traffic by weight (one unweighted connector is a group of one)."""

    names: tuple[str, ...]
    weights: tuple[float, ...]

    def order(self, rng: random.Random) -> list[str]:
        if len(self.names) == 1:
            return [self.names[0]]
        first = rng.choices(range(len(self.names)), weights=self.weights)[0]
        return [self.names[first], *(n for i, n in enumerate(self.names) if i != first)]


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[routes]]`` table."""

    index: int
    match: Mapping[str, frozenset[str]]
    groups: tuple[Group, ...]

    def matches(self, inp: RoutingInput) -> bool:
        for key, values in self.match.items():
            if key == "prefix":
                if not any(inp.to.startswith(v) for v in values):
                    return False
            elif key == "account":
                if inp.account_id not in values and inp.account_name not in values:
                    return False
            else:
                value = getattr(inp, key)
                if value is None or value.lower() not in values:
                    return False
        return True

    @property
    def connectors(self) -> list[str]:
        return [n for g in self.groups for n in g.names]

    def describe(self) -> str:
        when = ", ".join(f"{k}={'|'.join(sorted(v))}" for k, v in self.match.items()) or "any"
        parts = []
        for g in self.groups:
            if len(g.names) == 1:
                parts.append(g.names[0])
            else:
                parts.append(
                    "("
                    + " / ".join(f"{n}:{w:g}" for n, w in zip(g.names, g.weights, strict=True))
                    + ")"
                )
        return f"#{self.index + 1} when {when} -> " + " -> ".join(parts)


def _values(key: str, raw: Any, where: str) -> frozenset[str]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise ValueError(f"{where}: {key!r} must be a non-empty string or list of strings")
    if key == "prefix":
        out = {v if v.startswith("+") else "+" + v for v in items}
        if not all(v[1:].isdigit() for v in out):
            raise ValueError(f"{where}: prefix must be digits, like '+9198'")
        return frozenset(out)
    if key == "account":
        return frozenset(items)
    lowered = frozenset(v.lower() for v in items)
    if key == "type" and not lowered <= TYPES:
        raise ValueError(f"{where}: type must be among {sorted(TYPES)}")
    return lowered


def _groups(raw: Any, where: str) -> tuple[Group, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: 'connectors' must be a non-empty list")
    groups: list[Group] = []
    pending: list[tuple[str, float]] = []
    seen: set[str] = set()

    def flush() -> None:
        if pending:
            names, weights = zip(*pending, strict=True)
            groups.append(Group(tuple(names), tuple(weights)))
            pending.clear()

    for entry in raw:
        name: Any
        weight: Any
        if isinstance(entry, str):
            name, weight = entry, None
        elif isinstance(entry, Mapping):
            extra = set(entry) - {"name", "weight"}
            if extra:
                raise ValueError(f"{where}: unknown connector keys {sorted(extra)}")
            name, weight = entry.get("name"), entry.get("weight")
            if weight is not None and (
                not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0
            ):
                raise ValueError(f"{where}: weight of {name!r} must be a positive number")
        else:
            raise ValueError(f"{where}: a connector is a name or {{name=..., weight=...}}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: every connector entry needs a name")
        if name in seen:
            raise ValueError(f"{where}: connector {name!r} is listed twice")
        seen.add(name)
        if weight is None:
            flush()
            groups.append(Group((name,), (1.0,)))
        else:
            pending.append((name, float(weight)))
    flush()
    return tuple(groups)


class Router:
    """The ordered rules; ``route_for`` gives a message its connector order."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        # Whether any route splits traffic by weight: only then does a message need its own
        # seeded random pick (seeding one costs more than the rest of routing).
        self.draws = any(len(g.names) > 1 for rule in self.rules for g in rule.groups)

    @classmethod
    def from_settings(cls, routes: Iterable[Mapping[str, Any]]) -> Router:
        rules = []
        for i, table in enumerate(routes):
            where = f"route #{i + 1}"
            unknown = set(table) - {*MATCH_KEYS, "connectors", "name"}
            if unknown:
                raise ValueError(
                    f"{where}: unknown keys {sorted(unknown)}; "
                    f"known: {[*MATCH_KEYS, 'connectors', 'name']}"
                )
            match = {k: _values(k, table[k], where) for k in MATCH_KEYS if k in table}
            rules.append(Rule(i, match, _groups(table.get("connectors"), where)))
        return cls(rules)

    def validate(self, known: Iterable[str]) -> None:
        """Every connector a rule names must be one of the live connectors ``known``."""
        names = set(known) - {SANDBOX_CONNECTOR}
        for rule in self.rules:
            if SANDBOX_CONNECTOR in rule.connectors:
                raise ValueError(
                    f"route #{rule.index + 1} names {SANDBOX_CONNECTOR!r}, the built-in simulated "
                    "carrier: only sandbox keys reach it, so live routes may not name it"
                )
            missing = [n for n in rule.connectors if n not in names]
            if missing:
                raise ValueError(
                    f"route #{rule.index + 1} names unknown connectors {missing}; "
                    f"configured: {sorted(names) or 'none'}"
                )

    def match(self, inp: RoutingInput) -> Rule:
        for rule in self.rules:
            if rule.matches(inp):
                return rule
        raise NoRoute(
            f"no route matches {mask(inp.to)} ({inp.country or '?'}, {inp.type}); "
            "add a [[routes]] rule for it"
        )

    def route_for(self, inp: RoutingInput, rng: random.Random) -> list[str]:
        """Connector names in the order to try them."""
        rule = self.match(inp)
        return [name for group in rule.groups for name in group.order(rng)]

    def describe(self) -> list[str]:
        return [rule.describe() for rule in self.rules]


def live_connector_names(tables: Iterable[Mapping[str, Any]]) -> list[str]:
    """The names of the ``[[connectors]]`` tables of a config (the live connectors)."""
    return [str(t["name"]) for t in tables if isinstance(t.get("name"), str) and t["name"]]


def checked_router(routes: Sequence[Mapping[str, Any]], live: Iterable[str]) -> Router | None:
    """The router of ``[[routes]]``, checked against the live connector names ``live``.

    The one check behind start-up, a SIGHUP reload and ``dakghar routes add``, so the three can
    never disagree; raises ``ValueError`` naming the rule. None when there are no routes.
    """
    if not routes:
        return None
    router = Router.from_settings(list(routes))
    router.validate(live)
    return router
