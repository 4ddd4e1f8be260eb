"""Actions on ended campaigns answer 409 and change nothing; report.csv is formula-safe."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from tests.conftest import Gateway, Tenant


def settled(gw: Gateway, t: Tenant, data: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("body", "Hi")
    fields.setdefault("type", "transactional")
    r = gw.client.post(
        "/v1/campaigns",
        files={"file": ("list.csv", data.encode(), "text/csv")},
        data=fields,
        headers=t.headers,
    )
    assert r.status_code == 201, r.text
    c: dict[str, Any] = r.json()
    while c["status"] == "ingesting":
        time.sleep(0.02)
        c = gw.client.get(f"/v1/campaigns/{c['id']}", headers=t.headers).json()
    return c


def report(gw: Gateway, t: Tenant, cid: str) -> list[list[str]]:
    r = gw.client.get(f"/v1/campaigns/{cid}/report.csv", headers=t.headers)
    assert r.status_code == 200
    return list(csv.reader(io.StringIO(r.text)))


def test_pause_resume_and_cancel_of_a_completed_campaign_are_conflicts(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live", balance_milli=10_000)
    c = settled(gateway, t, "phone\n9812345678\n9812345679\n")
    cid = c["id"]
    for row in report(gateway, t, cid)[1:]:  # every message ends (canceled one by one)
        r = gateway.client.post(f"/v1/messages/{row[3]}/cancel", headers=t.headers)
        assert r.status_code == 200, r.text
    done = gateway.client.get(f"/v1/campaigns/{cid}", headers=t.headers).json()
    assert done["status"] == "completed"
    balance = gateway.client.get("/v1/account", headers=t.headers).json()["balance"]
    for action in ("pause", "resume", "cancel"):
        r = gateway.client.post(f"/v1/campaigns/{cid}/{action}", headers=t.headers)
        assert r.status_code == 409, (action, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "conflict"
        assert gateway.client.get(f"/v1/campaigns/{cid}", headers=t.headers).json() == done
    assert gateway.client.get("/v1/account", headers=t.headers).json()["balance"] == balance


def test_actions_on_canceled_and_failed_campaigns_are_conflicts(gateway: Gateway) -> None:
    t = gateway.tenant()
    c = settled(gateway, t, "phone\n9812345678\n")
    gateway.client.post(f"/v1/campaigns/{c['id']}/cancel", headers=t.headers)
    bad = "phone,name\n" + '9812399999,"' + "y" * 200_000 + '"\n'
    failed = settled(gateway, t, bad, body="Hi {name}")
    assert failed["status"] == "failed"
    for cid, status in ((c["id"], "canceled"), (failed["id"], "failed")):
        before = gateway.client.get(f"/v1/campaigns/{cid}", headers=t.headers).json()
        assert before["status"] == status
        for action in ("pause", "resume", "cancel"):
            r = gateway.client.post(f"/v1/campaigns/{cid}/{action}", headers=t.headers)
            assert (r.status_code, r.json()["code"]) == (409, "conflict"), (status, action)
        assert gateway.client.get(f"/v1/campaigns/{cid}", headers=t.headers).json() == before


def test_report_cells_that_would_be_formulas_are_neutralised(gateway: Gateway) -> None:
    t = gateway.tenant()
    data = (
        "phone\n"
        '"=HYPERLINK(""http://evil.example"",""x"")"\n'
        "+1+cmd|' /C calc'!A0\n"
        "@SUM(1+1)\n"
        "-2+3\n"
        "9812345678\n"
    )
    c = settled(gateway, t, data)
    rows = report(gateway, t, c["id"])
    phones = [r[0] for r in rows[1:]]
    assert phones == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'+1+cmd|' /C calc'!A0",
        "'@SUM(1+1)",
        "'-2+3",
        "+919812345678",  # an E.164 number is left as it is
    ]
