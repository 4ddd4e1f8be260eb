"""API errors surface as ``ApiError`` subclasses named by the gateway's ``code``."""

from __future__ import annotations

import dakghar_client as dk
import pytest

from tests.sdk.conftest import Live
from tests.sdk.peers import proxy_to


def test_invalid_number_is_a_validation_error_with_its_problem(client: dk.Client) -> None:
    with pytest.raises(dk.InvalidNumber) as caught:
        client.messages.send(to="12345", body="hi")
    error = caught.value
    assert isinstance(error, dk.ValidationError) and isinstance(error, dk.ApiError)
    assert (error.status, error.code, error.title) == (422, "invalid_number", "Invalid number")
    assert error.detail and error.problem["type"] == "urn:dakghar:error:invalid_number"


def test_malformed_field_is_validation_error_with_field_errors(client: dk.Client) -> None:
    with pytest.raises(dk.ValidationError) as caught:
        client.messages.send(to="+919812345678", body="x", validity_seconds=5)
    assert type(caught.value) is dk.ValidationError and caught.value.code == "validation_error"
    assert caught.value.errors and "validity_seconds" in caught.value.errors[0]["field"]


def test_empty_body_and_bad_callback_have_their_own_classes(client: dk.Client) -> None:
    with pytest.raises(dk.BodyEmpty):
        client.messages.send(to="+919812345678", body="")
    with pytest.raises(dk.InvalidCallbackUrl):
        client.messages.send(to="+919812345678", body="x", callback_url="ftp://example.com/")


def test_unknown_key_is_unauthorized_and_unknown_id_not_found(live: Live) -> None:
    with dk.Client("test_nope_nope", base_url=live.url) as stranger, pytest.raises(dk.Unauthorized):
        stranger.account.get()
    with live.client() as client, pytest.raises(dk.NotFound) as caught:
        client.messages.get("msg_doesnotexist")
    assert caught.value.status == 404


def test_same_key_with_another_body_is_an_idempotency_conflict(client: dk.Client) -> None:
    key = "conflict-" + client.messages.send(to="+919812345678", body="first").id
    client.messages.send(to="+919812345678", body="first", idempotency_key=key)
    with pytest.raises(dk.IdempotencyConflict) as caught:
        client.messages.send(to="+919812345678", body="second", idempotency_key=key)
    assert caught.value.status == 409


def test_live_key_without_balance_is_insufficient_credits(live: Live) -> None:
    account_id = live.cli("accounts", "create", "broke", "--balance", "0", "--sender", "DKGHAR")
    key = live.cli("keys", "create", account_id.split()[0], "--live").split()[0]
    with dk.Client(key, base_url=live.url) as broke, pytest.raises(dk.InsufficientCredits) as e:
        broke.messages.send(to="+919812345678", body="pay me")
    assert e.value.status == 402 and e.value.code == "insufficient_credits"


def test_a_code_this_version_does_not_know_is_a_plain_api_error(live: Live) -> None:
    with (
        proxy_to(live.url, ["problem:brand_new_rule"]) as proxy,
        live.client(proxy.url) as c,
        pytest.raises(dk.ApiError) as caught,
    ):
        c.account.get()
    assert type(caught.value) is dk.ApiError
    assert (caught.value.status, caught.value.code) == (418, "brand_new_rule")
