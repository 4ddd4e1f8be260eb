"""OTP, campaigns and the account through the SDK, against the real gateway (sandbox key)."""

from __future__ import annotations

import re
import time

import dakghar_client as dk
import pytest

from tests.sdk.conftest import Live


def code_of(client: dk.Client, otp: dk.Otp) -> str:
    """The code from the OTP's message: a sandbox key sees its body in full."""
    assert otp.message_id is not None
    deadline = time.monotonic() + 30
    while True:
        body = client.messages.get(otp.message_id).body or ""
        found = re.search(r"\b\d{6}\b", body)
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no code in {body!r}"
        time.sleep(0.1)


def test_otp_flow_wrong_code_then_right_code_then_no_reuse(client: dk.Client) -> None:
    otp = client.otp.send(to="+919812345670")
    assert otp.id.startswith("otp_") and otp.status == "pending" and otp.attempts_left == 5
    assert otp.expires_at is not None and otp.resend_after is not None
    code = code_of(client, otp)
    wrong = client.otp.check(id=otp.id, code="000000" if code != "000000" else "111111")
    assert (wrong.status, wrong.attempts_left, wrong.approved) == ("pending", 4, False)
    right = client.otp.check(to="+919812345670", code=code)
    assert right.approved and right.id == otp.id
    with pytest.raises(dk.Conflict):  # an approved code cannot be used again
        client.otp.check(id=otp.id, code=code)


def test_otp_resend_before_its_cooldown_is_rate_limited(live: Live) -> None:
    with live.client(max_retries=0) as client:
        otp = client.otp.send(to="+919812345671", length=4)
        with pytest.raises(dk.RateLimited) as caught:
            client.otp.resend(otp.id)
    assert caught.value.status == 429 and caught.value.retry_after is not None
    assert caught.value.retry_after > 0


def test_otp_check_needs_an_id_or_a_number(client: dk.Client) -> None:
    with pytest.raises(ValueError):
        client.otp.check(code="123456")


def test_campaign_upload_from_a_file_counts_its_rows(client: dk.Client, tmp_path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("phone,name\n+919812345601,Asha\n+919812345602,Ravi\n12345,Bad\n"
                   "+919812345601,Dup\n")  # fmt: skip
    created = client.campaigns.create(csv, name="diwali", body="Hi {name}", type="transactional")
    assert created.id.startswith("cmp_") and created.name == "diwali"
    deadline = time.monotonic() + 30
    while (progress := client.campaigns.get(created.id)).total < 4:
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)
    assert (progress.valid, progress.invalid, progress.duplicates) == (2, 1, 1)


def test_campaign_upload_from_bytes_and_a_file_object(client: dk.Client, tmp_path) -> None:
    made = client.campaigns.create(b"phone\n+919812345603\n", body="hello", type="transactional")
    path = tmp_path / "one.csv"
    path.write_bytes(b"phone\n+919812345604\n")
    with path.open("rb") as fh:
        again = client.campaigns.create(fh, body="hello", type="transactional")
    assert made.id != again.id and client.campaigns.get(again.id).id == again.id


def test_account_shows_the_demo_account_and_its_webhook_secret(client: dk.Client) -> None:
    account = client.account.get()
    assert account.name == "demo" and account.key_mode == "test"
    assert account.default_sender == "DKGHAR" and account.default_region == "IN"
    assert account.rate_limit is not None and account.rate_limit.per_second > 0
    assert client.account.webhook_secret().webhook_secret.startswith("whsec_")
