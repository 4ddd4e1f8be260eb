"""Batches (one bad entry never rejects the others) and Idempotency-Key replays."""

from __future__ import annotations

from tests.conftest import Gateway


def test_a_batch_accepts_the_good_entries_and_reports_each_bad_one(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live")
    r = gateway.client.post(
        "/v1/messages/batch",
        json={
            "messages": [
                {"to": "+919812345678", "body": "one"},
                {"to": "not a number", "body": "two"},
                {"to": "+919812345678"},
                {"to": "+919812345678", "body": "four", "type": "promotional"},
                "junk",
            ]
        },
        headers=t.headers,
    )
    assert r.status_code == 202
    out = r.json()
    assert [m["body"] for m in out["accepted"]] == ["one", "four"]
    assert [(x["index"], x["code"]) for x in out["rejected"]] == [
        (1, "invalid_number"),
        (2, "validation_error"),
        (4, "validation_error"),
    ]
    assert out["rejected"][1]["field"] == "$" or out["rejected"][1]["field"]


def test_the_shared_form_sends_one_body_to_many_numbers(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live", balance_milli=2000)
    r = gateway.client.post(
        "/v1/messages/batch",
        json={"to": ["+919812345678", "+917012345678", "+919876543210"], "body": "sale"},
        headers=t.headers,
    )
    out = r.json()
    assert len(out["accepted"]) == 2
    assert out["rejected"] == [
        {
            "index": 2,
            "code": "insufficient_credits",
            "detail": "balance cannot cover this message",
            "field": None,
        }
    ]
    assert gateway.client.get("/v1/account", headers=t.headers).json()["balance"] == 0.0


def test_a_batch_larger_than_1000_is_refused_whole(gateway: Gateway) -> None:
    t = gateway.tenant()
    r = gateway.client.post(
        "/v1/messages/batch",
        json={"to": ["+919812345678"] * 1001, "body": "x"},
        headers=t.headers,
    )
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


def test_a_full_batch_of_1000_is_accepted(gateway: Gateway) -> None:
    t = gateway.tenant()
    numbers = [f"+9198{i:08d}" for i in range(1000)]
    r = gateway.client.post(
        "/v1/messages/batch", json={"to": numbers, "body": "x"}, headers=t.headers
    )
    assert r.status_code == 202
    assert len(r.json()["accepted"]) == 1000


def test_the_same_idempotency_key_and_body_returns_the_first_response(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live")
    headers = {**t.headers, "Idempotency-Key": "order-123-shipped"}
    body = {"to": "+919812345678", "body": "shipped"}
    first = gateway.client.post("/v1/messages", json=body, headers=headers)
    second = gateway.client.post("/v1/messages", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(gateway.client.get("/v1/messages", headers=t.headers).json()["data"]) == 1
    assert gateway.client.get("/v1/account", headers=t.headers).json()["balance"] == 99.0


def test_the_same_idempotency_key_with_another_body_is_a_conflict(gateway: Gateway) -> None:
    t = gateway.tenant()
    headers = {**t.headers, "Idempotency-Key": "k1"}
    gateway.client.post("/v1/messages", json={"to": "+919812345678", "body": "a"}, headers=headers)
    r = gateway.client.post(
        "/v1/messages", json={"to": "+919812345678", "body": "b"}, headers=headers
    )
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_conflict"


def test_idempotency_keys_are_per_account(gateway: Gateway) -> None:
    a, b = gateway.tenant(name="a"), gateway.tenant(name="b")
    body = {"to": "+919812345678", "body": "a"}
    ra = gateway.client.post(
        "/v1/messages", json=body, headers={**a.headers, "Idempotency-Key": "same"}
    )
    rb = gateway.client.post(
        "/v1/messages", json=body, headers={**b.headers, "Idempotency-Key": "same"}
    )
    assert ra.json()["id"] != rb.json()["id"]


def test_a_refused_request_does_not_burn_its_idempotency_key(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live", balance_milli=0)
    headers = {**t.headers, "Idempotency-Key": "retry-me"}
    body = {"to": "+919812345678", "body": "a"}
    assert gateway.client.post("/v1/messages", json=body, headers=headers).status_code == 402
    gateway.call(gateway.services.store.update_account, t.account.id, balance_milli=5000)
    assert gateway.client.post("/v1/messages", json=body, headers=headers).status_code == 202


def test_batch_replays_are_idempotent_too(gateway: Gateway) -> None:
    t = gateway.tenant()
    headers = {**t.headers, "Idempotency-Key": "batch-1"}
    body = {"to": ["+919812345678", "bad"], "body": "x"}
    first = gateway.client.post("/v1/messages/batch", json=body, headers=headers).json()
    second = gateway.client.post("/v1/messages/batch", json=body, headers=headers).json()
    assert first == second
    assert len(gateway.client.get("/v1/messages", headers=t.headers).json()["data"]) == 1


def test_deeply_nested_json_in_a_batch_is_a_validation_error_not_a_500(gateway: Gateway) -> None:
    t = gateway.tenant()
    deep = "[" * 100_000 + "]" * 100_000
    bodies = [
        '{"messages": ' + deep + "}",
        '{"to": ' + deep + ', "body": "x"}',
        '{"messages": [{"to": "+919812345678", "body": "ok"}, {"to": ' + deep + "}]}",
    ]
    for body in bodies:  # too deep to parse at all, even inside one entry: the request is 422
        r = gateway.client.post(
            "/v1/messages/batch",
            content=body,
            headers={**t.headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    for path in ("/v1/messages", "/v1/otp"):
        r = gateway.client.post(
            path, content=deep, headers={**t.headers, "Content-Type": "application/json"}
        )
        assert r.status_code == 422, (path, r.text)
