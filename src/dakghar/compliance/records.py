"""Reading and writing the compliance records (senders, DLT templates, suppressions).

The domain's entry points over :class:`dakghar.store.compliance.ComplianceStore`, whatever the
backend: they check what the store should not have to know (sender types), and the accept step
reads through :class:`dakghar.compliance.policy.Compliance`, which caches what :func:`load`
returns. The records themselves live in the store's package and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

from dakghar.store.compliance import SENDER_TYPES as SENDER_TYPES
from dakghar.store.compliance import ComplianceStore, Template
from dakghar.store.compliance import Rules as Rules
from dakghar.store.compliance import Sender as Sender


async def load(store: ComplianceStore, account_id: str) -> Rules:
    """Every compliance row of ``account_id``."""
    return await store.compliance_rules(account_id)


async def add_sender(store: ComplianceStore, account_id: str, sender: Sender) -> None:
    """Register (or update the entity id of) a sender header for a type."""
    if sender.type not in SENDER_TYPES:
        raise ValueError(f"sender type must be one of {', '.join(SENDER_TYPES)}")
    await store.add_sender(account_id, sender)


async def add_templates(
    store: ComplianceStore, account_id: str, templates: Sequence[Template]
) -> int:
    """Register templates (replacing any with the same id); how many were written."""
    return await store.add_templates(account_id, templates)


async def suppress(store: ComplianceStore, account_id: str, number: str, reason: str) -> None:
    """Add ``number`` to the account's suppression list (idempotent)."""
    await store.add_suppression(account_id, number, reason)
