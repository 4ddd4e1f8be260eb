"""The DLT checks made when a message is accepted: registered sender, approved template.

TRAI's DLT rules (TCCCPR 2018) bind every commercial SMS to India to a registered header of the
right type and an approved template; the entity id and template id travel to the carrier. The
checks are an account setting (``dlt_enforced``), off for new and demo accounts so free text works
until senders and templates are registered. Whatever the setting, a registered sender's entity id
and a matching template's id are put on the message, so connectors can send them.

Each account's rules are read through the store (``ComplianceStore.compliance_rules``) and
compiled (``templates.TemplateIndex``), then reused for ``refresh_ms``: a registration made by
another process (the CLI) is seen within that time, and one followed by
:meth:`Compliance.invalidate` by the next :meth:`Compliance.prepare`. The accept path awaits
:meth:`~Compliance.prepare` before its synchronous checks, which costs nothing while the rules are
fresh; the checks themselves never read the database on the event loop: rules gone stale meanwhile
(a long campaign ingest) are used while a background read replaces them.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from dakghar.compliance.templates import TemplateIndex
from dakghar.core.message import MessageType
from dakghar.errors import InvalidSender, NotReady, TemplateMismatch
from dakghar.observability.logging import get_logger
from dakghar.store.base import Account
from dakghar.store.compliance import ComplianceStore, Rules

log = get_logger(__name__)

# How long a check made off the event loop (a script, a test thread) waits for a read.
WAIT_S = 30.0

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


def _compile(raw: Rules) -> AccountRules:
    senders: dict[str, dict[str, str | None]] = {}
    for sender in raw.senders:
        senders.setdefault(sender.header.upper(), {})[sender.type] = sender.entity_id
    return AccountRules(senders, TemplateIndex(raw.templates), raw.suppressed)


class Compliance:
    """Cached, compiled compliance rules per account, and the checks made with them."""

    def __init__(
        self,
        store: ComplianceStore,
        *,
        refresh_ms: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.refresh_s = refresh_ms / 1000
        self.clock = clock
        self._cache: dict[str, tuple[float, AccountRules]] = {}  # account -> (read at, rules)
        self._loading: dict[str, tuple[int, asyncio.Task[AccountRules]]] = {}
        self._generation = 0  # bumped by invalidate: a read begun before it is stale at once
        try:  # the loop the store runs on, for checks made from other threads
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def invalidate(self, account_id: str | None = None) -> None:
        """Mark cached rules (of one account, or all) stale so the next check reads them again."""
        self._generation += 1
        for key in list(self._cache) if account_id is None else [account_id]:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache[key] = (-math.inf, cached[1])

    async def prepare(self, account_id: str) -> AccountRules:
        """The account's compiled rules, read first when missing or older than the interval."""
        cached = self._cache.get(account_id)
        if cached is not None and self.clock() - cached[0] < self.refresh_s:
            return cached[1]
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        # Shielded: a request that goes away must not cancel the read others are waiting for.
        return await asyncio.shield(self._refresh(account_id))

    def rules(self, account_id: str) -> AccountRules:
        """The account's compiled rules, as :meth:`prepare` read them; never reads on the loop.

        Stale rules are used while a background read replaces them; an account whose rules were
        never read is :class:`NotReady` on the event loop, and waited for on any other thread.
        """
        cached = self._cache.get(account_id)
        if cached is not None and self.clock() - cached[0] < self.refresh_s:
            return cached[1]
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._wait(account_id)
        self._refresh(account_id)
        if cached is not None:
            return cached[1]
        log.warning("compliance_rules_not_ready", account_id=account_id)
        raise NotReady(
            "this account's compliance rules are being read; retry in a moment",
            headers={"Retry-After": "1"},
        )

    def _wait(self, account_id: str) -> AccountRules:
        loop = self._loop
        if loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self.prepare(account_id), loop)
            return future.result(timeout=WAIT_S)
        return asyncio.run(self.prepare(account_id))

    def _refresh(self, account_id: str) -> asyncio.Task[AccountRules]:
        generation = self._generation
        loading = self._loading.get(account_id)
        if loading is not None and loading[0] == generation:
            return loading[1]  # one read per account at a time, shared by every check
        task = asyncio.get_running_loop().create_task(self._load(account_id, generation))
        self._loading[account_id] = (generation, task)
        task.add_done_callback(functools.partial(self._loaded, account_id))
        return task

    def _loaded(self, account_id: str, task: asyncio.Task[AccountRules]) -> None:
        loading = self._loading.get(account_id)
        if loading is not None and loading[1] is task:
            del self._loading[account_id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("compliance_rules_unread", account_id=account_id, error=repr(exc))

    async def _load(self, account_id: str, generation: int) -> AccountRules:
        started = self.clock()
        compiled = _compile(await self.store.compliance_rules(account_id))
        if generation == self._generation:
            self._cache[account_id] = (started, compiled)
        elif account_id not in self._cache:
            # Begun before an invalidate, so it may miss a registration: usable, but stale.
            self._cache[account_id] = (-math.inf, compiled)
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
        entity = next((types[t] for t in sorted(allowed) if t in types), None) if types else None
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
