"""The compliance area of the store: sender headers, DLT templates, suppressions, opt-out owners.

The records (:class:`Sender`, :class:`Template`, :class:`Rules`) live here because the store
returns them and may not import ``dakghar.compliance``; that package (``records``, ``policy``,
``optout``, ``templates``) re-exports them and holds the rules applied with them. The SQL is
written once, in ``store/sql/compliance.py``, for every relational backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SENDER_TYPES = ("transactional", "service", "promotional")


@dataclass(frozen=True, slots=True)
class Sender:
    """A registered sender header (DLT "header") of an account."""

    header: str
    type: str
    entity_id: str | None


@dataclass(frozen=True, slots=True)
class Template:
    """One registered DLT template of an account."""

    id: str
    header: str
    category: str
    text: str


@dataclass(frozen=True, slots=True)
class Rules:
    """One account's compliance rows, as read together."""

    senders: list[Sender]
    templates: list[Template]
    suppressed: frozenset[str]


class ComplianceStore(Protocol):
    """What compliance asks of persistence; every read and write names its account."""

    async def compliance_rules(self, account_id: str) -> Rules:
        """Every sender, template (by id) and suppressed number of ``account_id``."""
        ...

    async def add_sender(self, account_id: str, sender: Sender) -> None:
        """Register a header for a type (upper-cased), or update the entity id it has."""
        ...

    async def add_templates(self, account_id: str, templates: Sequence[Template]) -> int:
        """Register templates, replacing any with the same id; how many were written."""
        ...

    async def add_suppression(self, account_id: str, number: str, reason: str) -> bool:
        """Suppress ``number`` for the account; False when it already was (idempotent)."""
        ...

    async def opt_out_owners(self, header: str, number: str) -> list[str]:
        """Accounts a reply to ``header`` from ``number`` belongs to: those that registered the
        header (any case), else those that sent to ``number`` from it; sorted by id."""
        ...
