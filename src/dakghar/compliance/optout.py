"""Opt-out: a STOP-style reply adds the sender of the reply to the account's suppression list.

The SMPP connector's inbound hook (``on_inbound(from, to, text)``) calls :func:`handle_inbound`
for every mobile-originated ``deliver_sm`` that is not a delivery receipt. The reply went to one
of our headers, so it is attributed to the accounts that registered that header or, for accounts
without DLT registrations, that sent to the number from it. Later promotional messages from those
accounts to the number are refused as ``dnd_blocked`` (``pipeline.dnd``).
"""

from __future__ import annotations

from dakghar.compliance import records
from dakghar.core.numbers import mask, parse_number
from dakghar.errors import DakgharError
from dakghar.observability.logging import get_logger
from dakghar.store.compliance import ComplianceStore

log = get_logger(__name__)

KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "UNSUB", "CANCEL", "END", "QUIT", "OPTOUT", "OPT-OUT"}
)


def is_opt_out(text: str) -> bool:
    """True when the first word of ``text`` is a STOP-style keyword (any case)."""
    words = text.strip().split(maxsplit=1)
    return bool(words) and words[0].upper().rstrip(".!") in KEYWORDS


async def handle_inbound(store: ComplianceStore, from_number: str, to: str, text: str) -> list[str]:
    """Record an opt-out if ``text`` is one; the accounts that now suppress ``from_number``.

    An inbound no account can be tied to records nothing: a suppression is per account, since
    the header the subscriber answered belongs to one.
    """
    if not is_opt_out(text):
        return []
    try:
        number = parse_number(from_number, default_region="IN", allowed_countries=None).e164
    except DakgharError:
        return []
    owners = await store.opt_out_owners(to, number)
    for account_id in owners:
        await records.suppress(store, account_id, number, "opt_out")
        log.info("opt_out", account_id=account_id, number=mask(number))
    return owners
