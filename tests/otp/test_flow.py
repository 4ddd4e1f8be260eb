"""The OTP acceptance flow through the real app and store: send, read, check, resend, expiry."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dakghar.store.base import StatusChange
from tests.conftest import Gateway, Tenant
from tests.otp.conftest import Clock

NUMBER = "+919812345678"


def send(gw: Gateway, t: Tenant, **body: Any) -> Any:
    body.setdefault("to", NUMBER)
    return gw.client.post("/v1/otp", json=body, headers=t.headers)


def check(gw: Gateway, t: Tenant, **body: Any) -> Any:
    return gw.client.post("/v1/otp/check", json=body, headers=t.headers)


def resend(gw: Gateway, t: Tenant, otp_id: str) -> Any:
    return gw.client.post(f"/v1/otp/{otp_id}/resend", headers=t.headers)


def code_of(gw: Gateway, t: Tenant, message_id: str) -> str:
    """What the user reads on the phone: sandbox keys see the OTP message's body in full."""
    body = gw.client.get(f"/v1/messages/{message_id}", headers=t.headers).json()["body"]
    found = re.search(r"\d{4,10}", body)
    assert found, body
    return found[0]


def wrong(code: str) -> str:
    return "".join(str((int(d) + 1) % 10) for d in code)


def test_sandbox_flow_send_read_check_wrong_then_right_then_reuse_is_refused(
    gateway: Gateway, clock: Clock
) -> None:
    t = gateway.tenant()
    r = send(gateway, t, to="098123 45678")
    assert r.status_code == 201
    otp = r.json()
    assert otp["id"].startswith("otp_")
    assert (otp["to"], otp["status"], otp["attempts_left"]) == (NUMBER, "pending", 5)
    assert otp["resends_left"] == 3
    assert otp["expires_at"].endswith("Z") and otp["resend_after"].endswith("Z")
    msg = gateway.client.get(f"/v1/messages/{otp['message_id']}", headers=t.headers).json()
    assert msg["type"] == "otp"
    assert re.fullmatch(r"Your verification code is \d{6}\. It expires in 5 min\.", msg["body"])
    code = code_of(gateway, t, otp["message_id"])

    r = check(gateway, t, id=otp["id"], code=wrong(code))
    assert r.status_code == 200
    assert r.json() == {"id": otp["id"], "status": "pending", "attempts_left": 4}
    clock.advance(12.5)
    r = check(gateway, t, id=otp["id"], code=code)
    assert r.json() == {"id": otp["id"], "status": "approved", "attempts_left": 4}

    again = check(gateway, t, id=otp["id"], code=code)
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert code not in again.text
    stats = gateway.services.otp.stats()
    assert (stats["sent"], stats["approved"], stats["wrong_codes"]) == (1, 1, 1)
    assert stats["time_to_approve_seconds"]["count"] == 1
    assert stats["time_to_approve_seconds"]["buckets"]["10"] == 0
    assert stats["time_to_approve_seconds"]["buckets"]["20"] == 1


def test_check_by_number_uses_the_newest_verification_and_a_new_one_replaces_the_old(
    gateway: Gateway,
) -> None:
    t = gateway.tenant()
    first = send(gateway, t).json()
    old_code = code_of(gateway, t, first["message_id"])
    second = send(gateway, t, length=8, template="Code {code}").json()
    code = code_of(gateway, t, second["message_id"])
    assert len(code) == 8
    r = check(gateway, t, to="9812345678", code=old_code)
    assert r.json()["id"] == second["id"]
    assert r.json()["attempts_left"] == 4
    r = check(gateway, t, id=first["id"], code=old_code)
    assert r.json()["status"] == "expired"  # superseded: its code no longer works
    r = check(gateway, t, to=NUMBER, code=code)
    assert r.json() == {"id": second["id"], "status": "approved", "attempts_left": 4}


def test_a_code_expires_after_its_ttl(gateway: Gateway, clock: Clock) -> None:
    t = gateway.tenant()
    otp = send(gateway, t, ttl_seconds=60).json()
    code = code_of(gateway, t, otp["message_id"])
    assert (
        gateway.client.get(f"/v1/messages/{otp['message_id']}", headers=t.headers)
        .json()["body"]
        .endswith("expires in 1 min.")
    )
    clock.advance(60.0)
    r = check(gateway, t, id=otp["id"], code=code)
    assert r.json() == {"id": otp["id"], "status": "expired", "attempts_left": 5}
    r = resend(gateway, t, otp["id"])
    assert r.status_code == 409
    assert gateway.services.otp.stats()["expired"] == 1


def test_resend_waits_a_growing_cooldown_and_stops_after_three(
    gateway: Gateway, clock: Clock
) -> None:
    t = gateway.tenant()
    otp = send(gateway, t).json()
    first_code = code_of(gateway, t, otp["message_id"])
    early = resend(gateway, t, otp["id"])
    assert early.status_code == 429
    assert early.json()["code"] == "rate_limited"
    assert early.headers["Retry-After"] == "30"

    message_ids, steps = [otp["message_id"]], []
    for cooldown in (30, 60, 120):
        clock.advance(cooldown - 1)
        r = resend(gateway, t, otp["id"])
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        clock.advance(1)
        r = resend(gateway, t, otp["id"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["message_id"] not in message_ids
        message_ids.append(body["message_id"])
        msg = gateway.call(gateway.services.store.get_message, t.account.id, body["message_id"])
        steps.append(msg.route_step)
    assert body["resends_left"] == 0 and body["resend_after"] is None
    # Nothing was delivered (no dispatcher here), so each resend moved one connector along.
    assert steps == [1, 2, 3]
    clock.advance(200)
    capped = resend(gateway, t, otp["id"])
    assert capped.status_code == 429
    assert "at most 3" in capped.json()["detail"]
    assert int(capped.headers["Retry-After"]) > 0

    latest = code_of(gateway, t, message_ids[-1])
    if latest != first_code:  # one chance in a million that the new code equals the old
        assert check(gateway, t, id=otp["id"], code=first_code).json()["status"] == "pending"
    assert check(gateway, t, id=otp["id"], code=latest).json()["status"] == "approved"
    assert gateway.services.otp.stats()["resent"] == 3


def test_brute_force_ends_in_failed_and_the_right_code_no_longer_works(
    gateway: Gateway,
) -> None:
    t = gateway.tenant()
    otp = send(gateway, t, length=4).json()
    code = code_of(gateway, t, otp["message_id"])
    seen = [check(gateway, t, id=otp["id"], code=wrong(code)).json() for _ in range(5)]
    assert [s["attempts_left"] for s in seen] == [4, 3, 2, 1, 0]
    assert [s["status"] for s in seen] == ["pending"] * 4 + ["failed"]
    r = check(gateway, t, id=otp["id"], code=code)
    assert r.json() == {"id": otp["id"], "status": "failed", "attempts_left": 0}
    assert gateway.services.otp.stats()["failed"] == 1


def test_twenty_racing_wrong_checks_get_no_more_than_the_attempts_left(
    gateway: Gateway,
) -> None:
    t = gateway.tenant(rate_per_second=1000, rate_burst=1000)
    otp = send(gateway, t).json()
    code = code_of(gateway, t, otp["message_id"])
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(
            pool.map(lambda _: check(gateway, t, id=otp["id"], code=wrong(code)).json(), range(20))
        )
    lefts = sorted(r["attempts_left"] for r in results)
    assert lefts == [0] * 16 + [1, 2, 3, 4]  # five real tries; the other fifteen found it failed
    assert all(r["status"] in ("pending", "failed") for r in results)
    assert sum(r["status"] == "pending" for r in results) == 4
    assert check(gateway, t, id=otp["id"], code=code).json()["status"] == "failed"
    assert gateway.services.otp.stats()["wrong_codes"] == 5


def test_unknown_or_foreign_verifications_are_not_found(gateway: Gateway) -> None:
    owner, other = gateway.tenant(), gateway.tenant(name="other")
    otp = send(gateway, owner).json()
    assert check(gateway, other, id=otp["id"], code="123456").status_code == 404
    assert check(gateway, other, to=NUMBER, code="123456").status_code == 404
    assert resend(gateway, other, otp["id"]).status_code == 404
    assert check(gateway, owner, id="otp_nope", code="123456").json()["code"] == "not_found"


def test_a_repeated_idempotency_key_returns_the_first_verification(gateway: Gateway) -> None:
    t = gateway.tenant()
    headers = {**t.headers, "Idempotency-Key": "signup-42"}
    first = gateway.client.post("/v1/otp", json={"to": NUMBER}, headers=headers)
    again = gateway.client.post("/v1/otp", json={"to": NUMBER}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    clash = gateway.client.post("/v1/otp", json={"to": "+919812345679"}, headers=headers)
    assert clash.status_code == 409
    assert gateway.services.otp.stats()["sent"] == 1


def test_the_openapi_document_describes_the_otp_paths(gateway: Gateway) -> None:
    doc = gateway.client.get("/openapi.json").json()
    assert doc["paths"]["/v1/otp"]["post"]["responses"]["201"]
    assert "429" in doc["paths"]["/v1/otp/{otp_id}/resend"]["post"]["responses"]
    assert doc["paths"]["/v1/otp/check"]["post"]["requestBody"]
    for name in ("OtpSendRequest", "OtpCheckRequest", "Otp", "OtpCheckResult"):
        assert name in doc["components"]["schemas"]


def test_a_resend_after_a_delivered_code_stays_on_the_connector_that_delivered(
    gateway: Gateway, clock: Clock
) -> None:
    t = gateway.tenant()
    otp = send(gateway, t).json()
    store = gateway.services.store
    gateway.call(store.apply, [StatusChange(otp["message_id"], "delivered")])
    clock.advance(30)
    again = resend(gateway, t, otp["id"]).json()
    msg = gateway.call(store.get_message, t.account.id, again["message_id"])
    assert msg.route_step == 0


def test_a_live_resend_the_balance_cannot_cover_keeps_the_old_code(
    gateway: Gateway, clock: Clock
) -> None:
    t = gateway.tenant(mode="live", balance_milli=1000)
    otp = send(gateway, t).json()
    code = gateway.call(gateway.services.store.get_message, t.account.id, otp["message_id"]).body
    gateway.services.auth.forget()  # the balance is read afresh, as after the cache's 2 s
    clock.advance(30)
    r = resend(gateway, t, otp["id"])
    assert r.status_code == 402
    assert r.json()["code"] == "insufficient_credits"
    digits = re.search(r"\d{6}", code)[0]  # type: ignore[index]
    assert check(gateway, t, id=otp["id"], code=digits).json()["status"] == "approved"
