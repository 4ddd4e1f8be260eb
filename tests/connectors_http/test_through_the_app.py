"""HTTP providers inside the running gateway: live messages over a provider's API, delivery
reports through ``POST /v1/connectors/{name}/callback`` (idempotent), and failover between two
providers with the circuit breaker opening and closing again. Providers are local servers."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dakghar.connectors.http.plivo import plivo_signature_v3
from dakghar.connectors.http.twilio import twilio_signature
from dakghar.connectors.http.vonage import vonage_signature
from dakghar.pipeline.breaker import CircuitBreaker
from tests.api.test_operations import admin_key
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
            dispatcher = gw.services.delivery.dispatcher
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


def provider_callback(kind: str, provider_id: str) -> tuple[str, dict[str, Any]]:
    """The query string and request arguments of a 'delivered' report as ``kind`` sends it."""
    if kind == "twilio":
        form = {"MessageSid": provider_id, "MessageStatus": "delivered"}
        url = "http://testserver/v1/connectors/p/callback"
        return "", {"data": form, "headers": {"X-Twilio-Signature":
                                              twilio_signature(SECRET, url, form)}}  # fmt: skip
    if kind == "plivo":
        form = {"MessageUUID": provider_id, "Status": "delivered", "ErrorCode": "000"}
        url = "http://testserver/v1/connectors/p/callback"
        nonce = "0123456789"
        headers = {"X-Plivo-Signature-V3": plivo_signature_v3(SECRET, url, nonce, form),
                   "X-Plivo-Signature-V3-Nonce": nonce}  # fmt: skip
        return "", {"data": form, "headers": headers}
    if kind == "vonage":
        params = {"messageId": provider_id, "status": "delivered", "err-code": "0",
                  "msisdn": "919812345678", "timestamp": str(int(time.time()))}  # fmt: skip
        sig = vonage_signature(params, "vonage-signature-secret")
        return "", {"json": {**params, "sig": sig}}
    report = [{"requestId": provider_id, "report": [{"number": "919812345678", "status": "1",
                                                     "desc": "DELIVERED"}]}]  # fmt: skip
    return "?secret=callback-shared-secret", {"data": {"data": json.dumps(report)}}


@pytest.mark.parametrize("kind", ["twilio", "plivo", "vonage", "msg91"])
def test_each_providers_delivery_report_settles_the_message(tmp_path: Any, kind: str) -> None:
    with provider_in_thread(kind) as fake:
        url = "http://testserver/v1/connectors/p/callback"
        connectors = [table(kind, fake.base_url, name="p", status_callback_url=url)]
        routes = [{"country": "IN", "connectors": ["p"]}]
        with delivering(tmp_path, connectors=connectors, routes=routes) as gw:
            t = gw.tenant(mode="live")
            m = send(gw, t.headers, to="+919812345678", body="नमस्ते, आपका पार्सल रास्ते में है")
            wait_status(gw, t.headers, m["id"], {"sent"})
            [accepted] = fake.accepted
            query, request = provider_callback(kind, accepted["id"])
            for _ in range(2):
                r = gw.client.post(f"/v1/connectors/p/callback{query}", **request)
                assert r.status_code == 204, r.text
            done = wait_status(gw, t.headers, m["id"], FINAL)
            assert (done["status"], done["connector"]) == ("delivered", "p")
            assert [e["status"] for e in done["events"]][-1:] == ["delivered"]
            assert len([e for e in done["events"] if e["status"] == "delivered"]) == 1
            state = gw.client.get("/v1/connectors", headers=admin_key(gw, t.account.id)).json()
            assert state["connectors"]["p"]["type"] == kind
            assert state["connectors"]["p"]["reports"] == 2
