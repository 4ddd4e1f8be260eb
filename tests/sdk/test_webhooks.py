"""``webhooks.verify`` against webhooks the real gateway POSTs to a loopback receiver."""

from __future__ import annotations

import time

import dakghar_client as dk
import pytest
from dakghar_client import webhooks

from dakghar.webhooks.signing import sign as gateway_sign
from tests.sdk.conftest import Live
from tests.sdk.peers import receiving


def test_a_real_webhook_verifies_and_any_tampering_does_not(client: dk.Client) -> None:
    secret = client.account.webhook_secret().webhook_secret
    with receiving() as receiver:
        sent = client.messages.send(to="+919812345678", body="hook", reference="wh-1",
                                    callback_url=f"{receiver.url}/hook")  # fmt: skip
        delivery = receiver.next_for(sent.id, timeout=30)
    header = delivery.headers["Dakghar-Signature"]
    webhooks.verify(secret, header, delivery.raw_body)  # no exception: genuine
    event = delivery.json
    assert (event["type"], event["status"], event["reference"]) == (
        "message.status", "delivered", "wh-1"
    )  # fmt: skip
    with pytest.raises(dk.SignatureError):
        webhooks.verify(secret, header, delivery.raw_body.replace(b"delivered", b"failed"))
    with pytest.raises(dk.SignatureError):
        webhooks.verify("whsec_wrong", header, delivery.raw_body)
    with pytest.raises(dk.SignatureError):  # replayed long after it was signed
        webhooks.verify(secret, header, delivery.raw_body, now=time.time() + 301)
    webhooks.verify(["whsec_old", secret], header, delivery.raw_body)  # a list: any matches
    webhooks.verify(secret, header, delivery.raw_body.decode())  # str bodies are encoded


def test_during_a_rotation_either_secret_verifies_the_dual_signature(live: Live) -> None:
    # A fresh account: the gateway caches an account's secrets for 5 s once it has signed
    # with them, and this one has signed nothing yet.
    account_id = live.cli("accounts", "create", "rotating", "--sender", "DKGHAR").split()[0]
    key = live.cli("keys", "create", account_id, "--sandbox").split()[0]
    with dk.Client(key, base_url=live.url) as client:
        old = client.account.webhook_secret().webhook_secret
        new = client.account.rotate_webhook_secret()
        assert new.webhook_secret != old and new.previous_expires_at is not None
        with receiving() as receiver:
            sent = client.messages.send(to="+919812345678", body="rotated",
                                        callback_url=f"{receiver.url}/hook")  # fmt: skip
            delivery = receiver.next_for(sent.id, timeout=30)
    header = delivery.headers["Dakghar-Signature"]
    assert header.count("v1=") == 2
    webhooks.verify(old, header, delivery.raw_body)
    webhooks.verify(new.webhook_secret, header, delivery.raw_body)


def test_missing_or_malformed_headers_are_signature_errors() -> None:
    body = b'{"event_id": "evt_1"}'
    for header in (None, "", "v1=abc", "t=notanumber,v1=abc", f"t={int(time.time())}"):
        with pytest.raises(dk.SignatureError):
            webhooks.verify("whsec_x", header, body)


def test_sdk_sign_matches_the_gateways_own_signing() -> None:
    body, now = b'{"a": 1}', int(time.time())
    assert webhooks.sign(["s1", "s2"], body, now) == gateway_sign(["s1", "s2"], body, now)
    webhooks.verify("s2", gateway_sign(["s1", "s2"], body, now), body)
