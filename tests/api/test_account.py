"""``GET``/``PATCH /v1/account``: the settings an account changes itself (API.md)."""

from __future__ import annotations

from tests.conftest import Gateway


def test_an_account_changes_its_own_settings_and_sees_them(gateway: Gateway) -> None:
    t = gateway.tenant()
    got = gateway.client.get("/v1/account", headers=t.headers).json()
    assert got["webhook_events"] == "final" and got["callback_url"] is None
    assert got["rate_limit"] == {"per_second": 200, "burst": 400}
    r = gateway.client.patch(
        "/v1/account",
        json={
            "callback_url": "https://hooks.example.com/sms",
            "webhook_events": "sent",
            "default_sender": "ACMEIN",
            "smart_encoding": True,
        },
        headers=t.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["callback_url"] == "https://hooks.example.com/sms"
    assert (body["webhook_events"], body["default_sender"], body["smart_encoding"]) == (
        "sent", "ACMEIN", True,
    )  # fmt: skip
    sent = gateway.client.post(
        "/v1/messages", json={"to": "+919812345678", "body": "hi"}, headers=t.headers
    )
    assert sent.json()["sender"] == "ACMEIN"  # the new default holds for the next request
    cleared = gateway.client.patch("/v1/account", json={"callback_url": None}, headers=t.headers)
    assert cleared.json()["callback_url"] is None and cleared.json()["webhook_events"] == "sent"


def test_account_settings_are_validated_and_billing_fields_are_not_patchable(
    gateway: Gateway,
) -> None:
    t = gateway.tenant()
    cases = [
        ({"webhook_events": "some"}, "validation_error"),
        ({"balance": 1_000_000}, "validation_error"),
        ({"default_sender": "<script>"}, "invalid_sender"),
        ({"callback_url": "http://127.0.0.1:8080/v1/messages"}, "invalid_callback_url"),
        ({"inbound_url": "http://169.254.169.254/latest/meta-data"}, "invalid_callback_url"),
        ({"callback_url": "https://user:pw@hooks.example.com/x"}, "invalid_callback_url"),
    ]
    for patch, code in cases:
        r = gateway.client.patch("/v1/account", json=patch, headers=t.headers)
        assert r.status_code == 422 and r.json()["code"] == code, (patch, r.text)
    got = gateway.client.get("/v1/account", headers=t.headers).json()
    assert got["callback_url"] is None and got["inbound_url"] is None
