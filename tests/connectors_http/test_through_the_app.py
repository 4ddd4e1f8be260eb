"""HTTP providers inside the running gateway: live messages over a provider's API, delivery
reports through ``POST /v1/connectors/{name}/callback`` (idempotent), and failover between two
providers with the circuit breaker opening and closing again. Providers are local servers."""

from __future__ import annotations

import time
from typing import Any

from dakghar.connectors.http.twilio import twilio_signature
from dakghar.pipeline.breaker import CircuitBreaker
from tests.connectors_http.fakes import SECRET, provider_in_thread, table
from tests.e2e.test_delivery import FINAL, delivering, send, wait_status

CALLBACK = "http://testserver/v1/connectors/tw/callback"


def test_a_twilio_message_is_sent_and_settled_by_a_signed_callback_once(tmp_path: Any) -> None:
    with provider_in_thread("twilio") as fake:
        connectors = [table("twilio", fake.base_url, name="tw", status_callback_url=CALLBACK)]
        routes = [{"country": "IN", "connectors": ["tw"]}]
        with delivering(tmp_path, connectors=connectors, routes=routes) as gw:
            t = gw.tenant(mode="live")
            m = send(gw, t.headers, to="+919812345678")
            sent = wait_status(gw, t.headers, m["id"], {"sent"})
            assert sent["connector"] == "tw"
            [accepted] = fake.accepted
            assert accepted["body"]["StatusCallback"] == CALLBACK
            form = {"MessageSid": accepted["id"], "MessageStatus": "delivered",
                    "AccountSid": "AC0123456789abcdef"}  # fmt: skip
            headers = {"X-Twilio-Signature": twilio_signature(SECRET, CALLBACK, form)}
            forged = {"X-Twilio-Signature": twilio_signature("wrong", CALLBACK, form)}
            r = gw.client.post("/v1/connectors/tw/callback", data=form, headers=forged)
            assert r.status_code == 403 and r.json()["code"] == "forbidden"
            for _ in range(2):  # the provider retries: the second changes nothing
                r = gw.client.post("/v1/connectors/tw/callback", data=form, headers=headers)
                assert r.status_code == 204, r.text
                done = wait_status(gw, t.headers, m["id"], FINAL)
                assert done["status"] == "delivered"
                assert [e["status"] for e in done["events"]] == [
                    "queued", "sending", "sent", "delivered"]  # fmt: skip
            assert gw.client.post("/v1/connectors/nope/callback", data=form).status_code == 404
            # The simulator is an SMPP connector: it takes no HTTP callbacks.
            r = gw.client.post("/v1/connectors/simulator/callback", data=form)
            assert r.status_code == 404
            assert fake.accepted == [accepted]


def test_failover_to_a_second_provider_and_back_when_the_first_recovers(tmp_path: Any) -> None:
    with provider_in_thread("twilio") as a, provider_in_thread("plivo") as b:
        a.default = "500"
        a.script = ["slow", "500", "slow"]  # some time out after the request left
        connectors = [
            table("twilio", a.base_url, name="A", timeout=0.5),
            table("plivo", b.base_url, name="B"),
        ]
        routes = [{"country": "IN", "connectors": ["A", "B"]}]
        with delivering(tmp_path, connectors=connectors, routes=routes) as gw:
            dispatcher = gw.services.extras["dispatcher"]
            dispatcher.breakers["A"] = breaker = CircuitBreaker(open_seconds=1.0)
            t = gw.tenant(mode="live")
            first = [send(gw, t.headers, to=f"+9198123450{i:02d}")["id"] for i in range(20)]
            for mid in first:
                done = wait_status(gw, t.headers, mid, {"sent"}, timeout=30)
                assert done["connector"] == "B"
            assert breaker.trips >= 1
            assert a.accepted == [] and len(b.accepted) == 20
            assert sorted(x["to"] for x in b.accepted) == sorted(
                f"9198123450{i:02d}" for i in range(20)
            )
            a.default = "ok"  # A recovers; after open_seconds the breaker's probe finds out
            deadline = time.monotonic() + 20
            later: list[str] = []
            while not a.accepted and time.monotonic() < deadline:
                later.append(send(gw, t.headers, to=f"+9198123460{len(later):02d}")["id"])
                time.sleep(0.3)
            more = [send(gw, t.headers, to=f"+9198123470{i:02d}")["id"] for i in range(10)]
            ends: dict[str, int] = {}
            for mid in later + more:
                done = wait_status(gw, t.headers, mid, {"sent"}, timeout=30)
                ends[done["connector"]] = ends.get(done["connector"], 0) + 1
            assert breaker.state == "closed"
            assert all(
                wait_status(gw, t.headers, mid, {"sent"})["connector"] == "A" for mid in more
            )
            # None lost, none sent twice: each number reached exactly one provider exactly once.
            numbers = [x["to"].lstrip("+") for x in a.accepted + b.accepted]
            assert len(numbers) == len(set(numbers)) == 20 + len(later) + len(more)
            assert ends.get("A", 0) >= len(more)
