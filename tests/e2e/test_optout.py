"""A subscriber's STOP reply over SMPP suppresses later promotional messages to them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.e2e.carrier import carrier
from tests.e2e.test_delivery import FINAL, delivering, send, smpp_connector, wait_status


def test_a_stop_reply_from_the_handset_blocks_promotional_messages(tmp_path: Path) -> None:
    with carrier() as sim:
        assert sim.address is not None
        routes = [{"connectors": ["carrier"]}]
        conn = smpp_connector("carrier", sim.address[1])
        with delivering(tmp_path, connectors=[conn], routes=routes) as gw:
            t = gw.tenant(mode="live", default_sender="ACMEIN")
            first = send(gw, t.headers, to="+919812345678", body="Your order has shipped")
            assert wait_status(gw, t.headers, first["id"], FINAL)["status"] == "delivered"
            asyncio.run_coroutine_threadsafe(
                sim.send_mo("dakghar", "+919812345678", "ACMEIN", "STOP"), sim.loop
            ).result(5)
            deadline = time.monotonic() + 10
            while True:
                r = gw.client.post(
                    "/v1/messages",
                    json={"to": "+919812345678", "body": "Sale!", "type": "promotional"},
                    headers=t.headers,
                )
                if r.status_code == 422 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert r.status_code == 422 and r.json()["code"] == "dnd_blocked", r.text
            assert "opted out" in r.json()["detail"], r.text
            ok = send(gw, t.headers, to="+919812345678", body="Your OTP", type="otp")
            assert ok["status"] in ("queued", "scheduled")  # transactional traffic still flows
