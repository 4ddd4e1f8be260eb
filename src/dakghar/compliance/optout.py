"""Opt-out: a STOP-style reply adds the sender of the reply to the account's suppression list.

The SMPP connector's inbound hook calls :func:`handle_inbound` for every mobile-originated
``deliver_sm`` that is not a delivery receipt. Later promotional messages from that account to
the number are refused as ``dnd_blocked`` (``pipeline.dnd``).
"""

from __future__ import annotations

from dakghar.compliance import records
from dakghar.core.numbers import mask, parse_number
from dakghar.errors import DakgharError
from dakghar.observability.logging import get_logger
from dakghar.store.base import Store
from dakghar.store.sqlite.store import SqliteStore

log = get_logger(__name__)

KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "UNSUB", "CANCEL", "END", "QUIT", "OPTOUT", "OPT-OUT"}
)


def is_opt_out(text: str) -> bool:
    """True when the first word of ``text`` is a STOP-style keyword (any case)."""
    words = text.strip().split(maxsplit=1)
    return bool(words) and words[0].upper().rstrip(".!") in KEYWORDS


async def handle_inbound(store: Store, account_id: str | None, from_number: str, text: str) -> bool:
    """Record an opt-out if ``text`` is one; True when the number was suppressed.

    Without an account (an inbound the connector cannot attribute) nothing is recorded: a
    suppression is per account, as the sender the subscriber answered belongs to one.
    """
    if account_id is None or not is_opt_out(text) or not isinstance(store, SqliteStore):
        return False
    try:
        number = parse_number(from_number, default_region="IN", allowed_countries=None).e164
    except DakgharError:
        return False
    await records.suppress(store, account_id, number, "opt_out")
    log.info("opt_out", account_id=account_id, number=mask(number))
    return True
