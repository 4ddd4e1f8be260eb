"""Campaigns through the real app: upload, counts, progress, pause/resume/cancel, report."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from dakghar.compliance import records
from dakghar.compliance.templates import Template
from dakghar.store.base import now_ms
from tests.conftest import Gateway, Tenant

MIXED = (
    "phone,name,amount\n"
    "9812345678,Asha,120\n"
    "+919812345679,Ravi,80\n"
    "not-a-number,Bad,1\n"
    "09812345678,Asha again,120\n"  # the same number as row 2
    "+917000000004,Dnd,5\n"  # the sandbox DND number
    "9812345680,,7\n"
)


def create(gw: Gateway, t: Tenant, data: str, **fields: Any) -> Any:
    fields.setdefault("body", "Hi {name}, {amount} points are yours")
    fields.setdefault("type", "promotional")
    return gw.client.post(
        "/v1/campaigns",
        files={"file": ("list.csv", data.encode(), "text/csv")},
        data={k: str(v) for k, v in fields.items()},
        headers=t.headers,
    )


def settled(gw: Gateway, t: Tenant, r: Any, timeout: float = 30) -> dict[str, Any]:
    """The campaign of a 201 once its background ingest has committed (or ended)."""
    assert r.status_code == 201, r.text
    c: dict[str, Any] = r.json()
    assert c["status"] == "ingesting"  # the answer does not wait for the rows
    deadline = time.monotonic() + timeout
    while c["status"] == "ingesting":
        assert time.monotonic() < deadline, f"still ingesting: {c}"
        time.sleep(0.02)
        c = gw.client.get(f"/v1/campaigns/{c['id']}", headers=t.headers).json()
    return c


def report(gw: Gateway, t: Tenant, cid: str) -> list[dict[str, str]]:
    r = gw.client.get(f"/v1/campaigns/{cid}/report.csv", headers=t.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def test_a_mixed_csv_is_counted_queued_and_reported(gateway: Gateway) -> None:
    t = gateway.tenant()
    c = settled(gateway, t, create(gateway, t, MIXED, name="diwali"))
    assert c["id"].startswith("cmp_")
    assert (c["status"], c["name"], c["type"]) == ("running", "diwali", "promotional")
    counts = ("total", "valid", "invalid", "duplicates", "dnd_filtered", "queued", "sent")
    assert tuple(c[k] for k in counts) == (6, 3, 1, 1, 1, 3, 0)
    assert gateway.client.get(f"/v1/campaigns/{c['id']}", headers=t.headers).json() == c
    rows = report(gateway, t, c["id"])
    assert [(x["phone"], x["status"], x["error_code"]) for x in rows[:3]] == [
        ("not-a-number", "rejected", "invalid_number"),
        ("09812345678", "rejected", "duplicate"),
        ("+917000000004", "rejected", "dnd_blocked"),
    ]
    queued = sorted((x["phone"], x["status"]) for x in rows[3:])
    assert queued == [
        ("+919812345678", "queued"),
        ("+919812345679", "queued"),
        ("+919812345680", "queued"),
    ]
    msg = gateway.client.get(f"/v1/messages/{rows[3]['message_id']}", headers=t.headers).json()
    assert msg["type"] == "promotional" and msg["body"].startswith("Hi ")
    asha = next(x for x in rows if x["phone"] == "+919812345678")
    body = gateway.client.get(f"/v1/messages/{asha['message_id']}", headers=t.headers).json()
    assert body["body"] == "Hi Asha, 120 points are yours"


def test_bad_requests_are_refused_before_any_row(gateway: Gateway) -> None:
    t = gateway.tenant()
    r = create(gateway, t, "phone,name\n9812345678,A\n", body="Hi {nom}")
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    r = create(gateway, t, "mobile_no,name\n9812345678,A\n")
    assert r.status_code == 422 and "phone" in r.json()["detail"]
    r = create(gateway, t, "phone\n9812345678\n", body="Hi", type="otp")
    assert r.status_code == 422
    r = gateway.client.post("/v1/campaigns", data={"body": "x"}, headers=t.headers)
    assert r.status_code == 422
    other = gateway.tenant(name="other")
    c = settled(gateway, t, create(gateway, t, "phone\n9812345678\n", body="Hi"))
    assert gateway.client.get(f"/v1/campaigns/{c['id']}", headers=other.headers).status_code == 404


def test_rate_staggers_and_pause_resume_cancel_follow_the_messages(gateway: Gateway) -> None:
    t = gateway.tenant()
    data = "phone\n" + "".join(f"98123{i:05d}\n" for i in range(10))
    before = now_ms()
    c = settled(gateway, t, create(gateway, t, data, body="Offer", type="transactional",
                                   rate_per_second=2))  # fmt: skip
    store = gateway.services.store
    ids = [x["message_id"] for x in report(gateway, t, c["id"])]
    rows = [gateway.call(store.get_message, t.account.id, i) for i in ids]
    due = sorted(m.next_attempt_at - before for m in rows)
    assert due[0] < 1000 and 4400 <= due[-1] < 5600  # 10 messages at 2/s: over 4.5 s
    assert {m.lane for m in rows} == {1}
    cid = c["id"]
    paused = gateway.client.post(f"/v1/campaigns/{cid}/pause", headers=t.headers).json()
    assert paused["status"] == "paused" and paused["queued"] == 10
    held = [gateway.call(store.get_message, t.account.id, i) for i in ids]
    assert min(m.next_attempt_at for m in held) > now_ms() + 365 * 24 * 3600 * 1000
    r = gateway.client.post(f"/v1/campaigns/{cid}/pause", headers=t.headers)
    assert r.status_code == 409
    resumed = gateway.client.post(f"/v1/campaigns/{cid}/resume", headers=t.headers).json()
    assert resumed["status"] == "running"
    back = sorted(gateway.call(store.get_message, t.account.id, i).next_attempt_at for i in ids)
    assert back[0] >= before and back[-1] - back[0] == due[-1] - due[0]
    canceled = gateway.client.post(f"/v1/campaigns/{cid}/cancel", headers=t.headers).json()
    assert (canceled["status"], canceled["queued"], canceled["canceled"]) == ("canceled", 0, 10)
    assert {x["status"] for x in report(gateway, t, cid)} == {"canceled"}


def test_a_live_campaign_is_billed_and_refunded_on_cancel(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live", balance_milli=2500)  # 2.5 credits: two messages
    data = "phone\n9812345678\n9812345679\n9812345680\n"
    c = settled(
        gateway, t, create(gateway, t, data, body="Your bill is ready", type="transactional")
    )
    assert (c["valid"], c["invalid"]) == (2, 1)
    assert next(x["error_code"] for x in report(gateway, t, c["id"])) == "insufficient_credits"
    assert gateway.client.get("/v1/account", headers=t.headers).json()["balance"] == 0.5
    gateway.client.post(f"/v1/campaigns/{c['id']}/cancel", headers=t.headers)
    assert gateway.client.get("/v1/account", headers=t.headers).json()["balance"] == 2.5


def test_scheduled_campaigns_wait(gateway: Gateway) -> None:
    t = gateway.tenant()
    far = create(
        gateway, t, "phone\n9812345678\n", body="Later", schedule_at="2099-01-01T00:00:00Z"
    )
    assert far.status_code == 422  # more than 60 days ahead
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    c = settled(gateway, t, create(gateway, t, "phone\n9812345678\n", body="Later",
                                   type="transactional", schedule_at=tomorrow))  # fmt: skip
    assert (c["status"], c["queued"]) == ("scheduled", 1)


def test_a_dlt_template_id_fills_its_variables_from_the_columns(gateway: Gateway) -> None:
    t = gateway.tenant()
    text = "Dear {#var#}, your order {#var#} has shipped"
    template = Template("1107000000000009", "ACMEBK", "service", text)
    gateway.call(records.add_templates, gateway.services.store, t.account.id, [template])
    data = "name,phone,order\nAsha,9812345678,A-17\n"
    c = create(gateway, t, data, body="", template_id="1107000000000009", type="transactional")
    row = report(gateway, t, settled(gateway, t, c)["id"])[0]
    msg = gateway.client.get(f"/v1/messages/{row['message_id']}", headers=t.headers).json()
    assert msg["body"] == "Dear Asha, your order A-17 has shipped"
    missing = create(gateway, t, data, body="", template_id="nope", type="transactional")
    assert missing.status_code == 404


def test_a_csv_malformed_after_the_answer_fails_its_campaign_and_sends_nothing(
    gateway: Gateway,
) -> None:
    t = gateway.tenant()
    rows = "".join(f"98123{i:05d},x\n" for i in range(2500))
    bad = "phone,name\n" + rows + '9812399999,"' + "y" * 200_000 + '"\n'
    c = settled(gateway, t, create(gateway, t, bad, body="Hi {name}"))
    assert (c["status"], c["queued"], c["canceled"]) == ("failed", 0, 2000)


def test_mostly_invalid_lists_are_reported_row_for_row(gateway: Gateway) -> None:
    t = gateway.tenant()
    data = "phone\n" + "12\n" * 4500 + "9812345678\n"
    c = settled(gateway, t, create(gateway, t, data, body="Hi", type="transactional"))
    assert (c["total"], c["valid"], c["invalid"]) == (4501, 1, 4500)
    rows = report(gateway, t, c["id"])
    assert len(rows) == 4501 and rows[-1]["status"] == "queued"
    assert {r["error_code"] for r in rows[:-1]} == {"invalid_number"}
