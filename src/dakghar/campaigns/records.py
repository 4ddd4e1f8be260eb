"""What the campaign service reads from the store beyond single calls: the report, page by page.

The campaign tables and their operations are the store's campaigns area
(:class:`dakghar.store.campaigns.CampaignStore`, which also explains staging and holding);
this module composes those calls for the report and names the statuses a campaign counts as
failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dakghar.core.message import FAILED_STATUSES
from dakghar.store.campaigns import CampaignStore

FAILED = tuple(sorted(s.value for s in FAILED_STATUSES))  # core.message is the one home


async def report_rows(
    store: CampaignStore, campaign_id: str, page: int = 5000
) -> AsyncIterator[tuple[str, str, str, str]]:
    """(phone, status, error_code, message_id) for every row: refused rows, then messages.

    Read page by page (keyset pagination), so a million-row report never sits in memory.
    """
    after_row = -1
    while True:
        rejects = await store.campaign_rejects(campaign_id, after_row, page)
        for r in rejects:
            yield r.phone, "rejected", r.error_code, ""
        if len(rejects) < page:
            break
        after_row = rejects[-1].row_no
    after_id = ""
    while True:
        msgs = await store.campaign_messages(campaign_id, after_id, page)
        for m in msgs:
            yield m.to_number, m.status, m.error_code or "", m.id
        if len(msgs) < page:
            break
        after_id = msgs[-1].id
