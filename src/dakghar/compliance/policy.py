"""The DLT checks made when a message is accepted: registered sender, approved template.

TRAI's DLT rules (TCCCPR 2018) bind every commercial SMS to India to a registered header of the
right type and an approved template; the entity id and template id travel to the carrier. The
checks are an account setting (``dlt_enforced``), off for new and demo accounts so free text works
until senders and templates are registered. Whatever the setting, a registered sender's entity id
and a matching template's id are put on the message, so connectors can send them.

Each account's rules are read once and compiled (``templates.TemplateIndex``), then reused for
``refresh_ms``: a registration made by another process (the CLI) is seen within that time, and
one made through :meth:`Compliance.invalidate` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dakghar.compliance import records
from dakghar.compliance.templates import TemplateIndex
from dakghar.core.message import MessageType
from dakghar.errors import InvalidSender, TemplateMismatch
from dakghar.store.base import Account, Store
from dakghar.store.sqlite.store import SqliteStore

# Which registered header types may carry which message type.
ALLOWED_SENDER_TYPES: dict[MessageType, frozenset[str]] = {
    MessageType.OTP: frozenset({"transactional", "service"}),
    MessageType.TRANSACTIONAL: frozenset({"transactional", "service"}),
    MessageType.PROMOTIONAL: frozenset({"promotional"}),
}


@dataclass(frozen=True, slots=True)
class Clearance:
    """What the DLT checks found: ids for the carrier, the template's category for DND."""

    entity_id: str | None = None
    template_id: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class AccountRules:
    """One account's rules, compiled."""

    senders: dict[str, dict[str, str | None]]  # header -> type -> entity id
    templates: TemplateIndex
    suppressed: frozenset[str]


_EMPTY = AccountRules({}, TemplateIndex(()), frozenset())


class Compliance:
    """Cached, compiled compliance rules per account, and the checks made with them."""

    def __init__(
        self,
        store: Store,
        *,
        refresh_ms: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.refresh_s = refresh_ms / 1000
        self.clock = clock
        self._cache: dict[str, tuple[float, AccountRules]] = {}

    def invalidate(self, account_id: str | None = None) -> None:
        """Forget cached rules (of one account, or all) so the next check reads them again."""
        if account_id is None:
            self._cache.clear()
        else:
            self._cache.pop(account_id, None)

    def rules(self, account_id: str) -> AccountRules:
        """The account's compiled rules, read again when older than the refresh interval."""
        now = self.clock()
        cached = self._cache.get(account_id)
        if cached is not None and now - cached[0] < self.refresh_s:
            return cached[1]
        if not isinstance(self.store, SqliteStore) or self.store._writer is None:
            return _EMPTY
        raw = records.load_sync(self.store._reader(), account_id)
        senders: dict[str, dict[str, str | None]] = {}
        for s in raw.senders:
            senders.setdefault(s.header.upper(), {})[s.type] = s.entity_id
        compiled = AccountRules(senders, TemplateIndex(raw.templates), raw.suppressed)
        self._cache[account_id] = (now, compiled)
        return compiled

    def suppressed(self, account_id: str, e164: str) -> bool:
        """True when the number opted out of the account's messages."""
        return e164 in self.rules(account_id).suppressed

    def clear(
        self,
        account: Account,
        *,
        sender: str | None,
        body: str,
        mtype: MessageType,
        country: str | None,
    ) -> Clearance:
        """Check sender and template; raise InvalidSender/TemplateMismatch when enforced.

        Enforcement applies to Indian destinations of accounts with ``dlt_enforced`` on.
        """
        enforce = account.dlt_enforced and country == "IN"
        rules = self.rules(account.id)
        header = (sender or "").upper()
        allowed = ALLOWED_SENDER_TYPES[mtype]
        types = rules.senders.get(header, {})
        entity = next((types[t] for t in sorted(allowed) if t in types), None)
        if enforce and not allowed & types.keys():
            raise InvalidSender(
                f"sender {sender!r} is not registered for {mtype.value} messages on this "
                "account; register it with 'dakghar senders add'",
                errors=[{"field": "sender", "code": "invalid_sender"}],
            )
        template = rules.templates.match(header, body)
        if enforce and template is None:
            raise TemplateMismatch(
                f"the body matches no approved DLT template of sender {sender!r}",
                errors=[{"field": "body", "code": "template_mismatch"}],
            )
        if template is None:
            return Clearance(entity_id=entity)
        return Clearance(entity, template.id, template.category)
