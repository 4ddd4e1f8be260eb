"""A big campaign does not starve OTPs or other accounts: the real app, delivering over SMPP.

The carrier is a simulated SMSC on a loopback port behind a connector paced at 200 submit_sm/s,
so a 4,000-row campaign needs about 20 s to drain. While it drains, an OTP of the same account
and a message of another account must each be delivered within a couple of seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.carrier import carrier
from tests.e2e.test_delivery import FINAL, delivering, send, smpp_connector, wait_status

pytestmark = pytest.mark.timeout(90)

ROWS = 4000


def test_otps_and_other_accounts_pass_a_draining_campaign(tmp_path: Path) -> None:
    with carrier() as sim:
        assert sim.address is not None
        conn = {**smpp_connector("carrier", sim.address[1]), "rate": 200}
        with delivering(tmp_path, connectors=[conn], routes=[{"connectors": ["carrier"]}]) as gw:
            big = gw.tenant(mode="live", balance_milli=10**9)
            other = gw.tenant(mode="live", name="other", balance_milli=10**6)
            rows = "".join(f"+9198{i:08d},{i}\n" for i in range(ROWS))
            created = gw.client.post(
                "/v1/campaigns",
                files={"file": ("list.csv", f"phone,n\n{rows}".encode(), "text/csv")},
                data={"body": "Statement {n} is ready", "type": "transactional"},
                headers=big.headers,
            )
            assert created.status_code == 201, created.text
            cid = created.json()["id"]
            started = time.monotonic()
            otp = send(gw, big.headers, to="+919700000001", body="Code 123456", type="otp")
            theirs = send(gw, other.headers, to="+919700000002", body="Your order shipped")
            done: list[dict[str, Any]] = [
                wait_status(gw, h, m["id"], FINAL, timeout=10)
                for h, m in ((big.headers, otp), (other.headers, theirs))
            ]
            took = time.monotonic() - started
            progress = gw.client.get(f"/v1/campaigns/{cid}", headers=big.headers).json()
            gw.client.post(f"/v1/campaigns/{cid}/cancel", headers=big.headers)
    assert [m["status"] for m in done] == ["delivered", "delivered"]
    assert took < 5
    assert progress["valid"] == ROWS and progress["queued"] > ROWS // 2  # still draining
