"""Campaigns through the whole pipeline: API -> queue -> dispatcher -> SMPP -> simulated carrier."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.e2e.test_delivery import FINAL, delivering, send, wait_status


def post_campaign(gw: Any, headers: dict[str, str], data: str, **fields: Any) -> dict[str, Any]:
    r = gw.client.post(
        "/v1/campaigns",
        files={"file": ("list.csv", data.encode(), "text/csv")},
        data={k: str(v) for k, v in fields.items()},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def wait_campaign(
    gw: Any, headers: dict[str, str], cid: str, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        c: dict[str, Any] = gw.client.get(f"/v1/campaigns/{cid}", headers=headers).json()
        if c["status"] in ("completed", "canceled"):
            return c
        assert time.monotonic() < deadline, f"campaign still {c}"
        time.sleep(0.05)


def test_a_paced_campaign_is_delivered_and_reported(tmp_path: Path) -> None:
    with delivering(tmp_path) as gw:
        t = gw.tenant(mode="test")
        data = "phone,name\n9812345678,Asha\n9812345679,Ravi\n9812345680,Mina\nbad,X\n"
        c = post_campaign(gw, t.headers, data, body="Hi {name}", type="promotional",
                          rate_per_second=20)  # fmt: skip
        done = wait_campaign(gw, t.headers, c["id"])
        assert (done["delivered"], done["invalid"], done["queued"]) == (3, 1, 0)
        report = gw.client.get(f"/v1/campaigns/{c['id']}/report.csv", headers=t.headers).text
        assert report.count(",delivered,,msg_") == 3


def test_an_otp_is_not_held_behind_a_large_campaign_of_another_account(tmp_path: Path) -> None:
    with delivering(tmp_path) as gw:
        bulk, other = gw.tenant(mode="test"), gw.tenant(mode="test", name="other")
        rows = "".join(f"98{i:08d}\n" for i in range(20_000))
        c = post_campaign(gw, bulk.headers, "phone\n" + rows, body="Sale", type="promotional")
        otp = send(gw, other.headers, to="+919812345678", type="otp", body="Your code is 1234")
        done = wait_status(gw, other.headers, otp["id"], FINAL)
        assert done["status"] == "delivered"
        progress = gw.client.get(f"/v1/campaigns/{c['id']}", headers=bulk.headers).json()
        assert progress["queued"] > 0  # the OTP went out while the campaign was still draining
        gw.client.post(f"/v1/campaigns/{c['id']}/cancel", headers=bulk.headers)
