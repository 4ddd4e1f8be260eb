"""Pacing across the close of promotional hours (21:00 IST), with an injected clock."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from dakghar.campaigns.service import CampaignService, CampaignSpec
from dakghar.store.base import MessageFilter
from tests.conftest import Gateway


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def test_a_live_promotion_stops_at_nine_pm_and_goes_on_at_its_rate_at_nine_am(
    gateway: Gateway,
) -> None:
    t = gateway.tenant(mode="live")
    now = ms("2026-11-25T20:59:58+05:30")
    service = CampaignService(gateway.services.store, gateway.services.acceptor, clock=lambda: now)
    data = io.BytesIO(b"phone\n" + b"".join(b"98123%05d\n" % i for i in range(5)))
    spec = CampaignSpec(body="Sale today", type="promotional", rate_per_second=1)
    c = gateway.call(service.create, t.account, spec, data, sandbox=False)
    rows = sorted(
        gateway.call(gateway.services.store.list_messages, t.account.id, MessageFilter(), limit=10,
                      after_id=None),
        key=lambda m: m.next_attempt_at,
    )  # fmt: skip
    assert c.valid == 5
    nine = ms("2026-11-26T09:00:00+05:30")
    assert [(m.status, m.next_attempt_at) for m in rows] == [
        ("queued", now),
        ("queued", now + 1000),
        ("scheduled", nine),
        ("scheduled", nine + 1000),
        ("scheduled", nine + 2000),
    ]
    assert all(m.schedule_at == m.next_attempt_at for m in rows[2:])
