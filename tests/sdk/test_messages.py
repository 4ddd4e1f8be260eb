"""Messages through the SDK against a real gateway: send, get, list every page, cancel, batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import dakghar_client as dk
import pytest

from tests.sdk.conftest import wait_final


def test_sent_message_is_read_back_delivered_with_its_events(client: dk.Client) -> None:
    sent = client.messages.send(to="098123 45678", body="Your order 123 has shipped",
                                reference="order-123")  # fmt: skip
    assert sent.id.startswith("msg_") and sent.to == "+919812345678"
    assert sent.status == "queued" and sent.segments == 1 and sent.encoding == "GSM-7"
    assert sent.reference == "order-123" and sent.created_at is not None
    final = wait_final(client, sent.id)
    assert final.status == "delivered" and final.connector == "simulator"
    assert final.events is not None
    assert [e.status for e in final.events][-1] == "delivered"
    assert final.events[0].at.tzinfo is not None


def test_carrier_rejection_is_a_final_failed_message(client: dk.Client) -> None:
    final = wait_final(client, client.messages.send(to="+917000000001", body="x").id)
    assert (final.status, final.error_code) == ("failed", "carrier_rejected")


def test_list_follows_next_cursor_through_every_page(client: dk.Client) -> None:
    reference = f"pages-{uuid.uuid4().hex[:8]}"
    ids = {client.messages.send(to="+919812345678", body=f"n{i}", reference=reference).id
           for i in range(5)}  # fmt: skip
    listed = list(client.messages.list(reference=reference, limit=2))  # three pages
    assert [m.id for m in listed] == sorted(ids, reverse=True)  # newest first, each once
    assert all(m.reference == reference for m in listed)


def test_list_filters_by_status_and_time(client: dk.Client) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    failed = wait_final(client, client.messages.send(to="+917000000001", body="f").id)
    found = list(client.messages.list(status="failed", since=since, limit=1000))
    assert failed.id in {m.id for m in found} and {m.status for m in found} == {"failed"}
    assert list(client.messages.list(until=since - timedelta(days=3650))) == []


def test_scheduled_message_cancels_and_a_final_one_conflicts(client: dk.Client) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = client.messages.send(to="+919812345678", body="later", schedule_at=later)
    assert scheduled.status == "scheduled"
    assert client.messages.cancel(scheduled.id).status == "canceled"
    with pytest.raises(dk.NotCancelable) as caught:  # another name for Conflict
        client.messages.cancel(scheduled.id)
    assert type(caught.value) is dk.Conflict
    assert caught.value.status == 409 and caught.value.code == "conflict"  # API.md's code


def test_batch_accepts_good_entries_and_rejects_only_the_bad_one(client: dk.Client) -> None:
    shared = client.messages.send_batch(to=["+919812345678", "12345", "+917012345678"],
                                        body="Sale starts at 10")  # fmt: skip
    assert [m.to for m in shared.accepted] == ["+919812345678", "+917012345678"]
    assert [(r.index, r.code) for r in shared.rejected] == [(1, "invalid_number")]
    listed = client.messages.send_batch(
        [{"to": "+919812345678", "body": "one", "reference": "b-1"}, {"to": "+919812345679",
         "body": "two", "schedule_at": datetime.now(UTC) + timedelta(hours=1)}]
    )  # fmt: skip
    assert [m.status for m in listed.accepted] == ["queued", "scheduled"] and not listed.rejected
    with pytest.raises(ValueError):
        client.messages.send_batch(to=["+919812345678"])  # a body is needed
