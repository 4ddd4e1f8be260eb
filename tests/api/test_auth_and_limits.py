"""Keys, account scoping, the per-key rate limit and the kill switch, through the real app."""

from __future__ import annotations

from tests.conftest import Gateway


def test_requests_without_a_valid_key_are_unauthorized(gateway: Gateway) -> None:
    t = gateway.tenant()
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer test_nothing"},
        # the last character changed (to another one: a key ending in X stayed valid before)
        {"Authorization": f"Bearer {t.key[:-1]}{'Y' if t.key.endswith('X') else 'X'}"},
        {"Authorization": "Bearer " + "test_" + "a" * 12 + "_" + "b" * 32},
    ):
        r = gateway.client.get("/v1/account", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["code"] == "unauthorized"


def test_a_revoked_key_stops_working(gateway: Gateway) -> None:
    t = gateway.tenant()
    assert gateway.client.get("/v1/account", headers=t.headers).status_code == 200
    key_id = "_".join(t.key.split("_")[:2])
    assert gateway.call(gateway.services.store.revoke_api_key, t.account.id, key_id)
    gateway.services.auth.forget()
    assert gateway.client.get("/v1/account", headers=t.headers).status_code == 401


def test_the_account_shows_balance_limits_and_defaults(gateway: Gateway) -> None:
    t = gateway.tenant(
        mode="live", balance_milli=12_500, default_sender="ACME", allowed_countries="IN,BD"
    )
    acc = gateway.client.get("/v1/account", headers=t.headers).json()
    assert acc["id"] == t.account.id
    assert acc["balance"] == 12.5
    assert acc["default_sender"] == "ACME"
    assert acc["default_region"] == "IN"
    assert acc["limits"]["allowed_countries"] == ["BD", "IN"]
    assert acc["limits"]["segment_limit"] == 10
    assert acc["key_mode"] == "live"


def test_going_over_the_per_key_rate_answers_429_with_retry_after(gateway: Gateway) -> None:
    t = gateway.tenant(rate_per_second=1, rate_burst=3)
    codes = [gateway.client.get("/v1/account", headers=t.headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = gateway.client.get("/v1/account", headers=t.headers)
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1


def test_paused_accounts_get_sending_paused_and_nothing_is_written(gateway: Gateway) -> None:
    t = gateway.tenant(sending_paused=True)
    r = gateway.client.post(
        "/v1/messages", json={"to": "+919812345678", "body": "x"}, headers=t.headers
    )
    assert r.status_code == 503
    assert r.json()["code"] == "sending_paused"
    assert "retry-after" in r.headers
    assert gateway.client.get("/v1/messages", headers=t.headers).json()["data"] == []


def test_health_readiness_and_the_openapi_document(gateway: Gateway) -> None:
    assert gateway.client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = gateway.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok"
    doc = gateway.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/messages", "/v1/messages/batch", "/v1/account"} <= set(doc["paths"])
    assert "MessageRequest" in doc["components"]["schemas"]
    assert "Dakghar API" in gateway.client.get("/docs").text


def test_unknown_paths_and_methods_are_problems(gateway: Gateway) -> None:
    r = gateway.client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = gateway.client.delete("/v1/messages")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
