"""The DLT, DND, opt-out and promotional-hour rules as the accept path applies them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dakghar.compliance import dnd, records
from dakghar.compliance.optout import handle_inbound, is_opt_out
from dakghar.compliance.templates import Template
from dakghar.errors import DndBlocked
from dakghar.pipeline.accept import Draft
from tests.conftest import Gateway, Tenant


def send(gw: Gateway, t: Tenant, **body: Any) -> Any:
    return gw.client.post("/v1/messages", json=body, headers=t.headers)


def register(gw: Gateway, t: Tenant) -> None:
    store = gw.services.store
    acc = t.account.id
    gw.call(records.add_sender, store, acc, records.Sender("ACMEBK", "service", "1201000000000001"))
    gw.call(
        records.add_sender, store, acc, records.Sender("ACMESL", "promotional", "1201000000000001")
    )
    gw.call(
        records.add_templates,
        store,
        acc,
        [
            Template("1107000000000001", "ACMEBK", "service", "Your OTP is {#var#}. Do not share."),
            Template("1107000000000002", "ACMESL", "banking", "Flat {#var#} off on cards today"),
        ],
    )
    gw.services.acceptor.compliance.invalidate()


def stored(gw: Gateway, t: Tenant, message_id: str) -> Any:
    return gw.call(gw.services.store.get_message, t.account.id, message_id)


def test_free_text_works_until_dlt_is_enforced_and_ids_still_travel(gateway: Gateway) -> None:
    t = gateway.tenant()
    register(gateway, t)
    free = send(gateway, t, to="+919812345678", body="Anything at all", sender="OTHER")
    assert free.status_code == 202
    ok = send(
        gateway, t, to="+919812345678", body="Your OTP is 4821. Do not share.", sender="ACMEBK"
    )
    assert ok.status_code == 202
    row = stored(gateway, t, ok.json()["id"])
    assert (row.entity_id, row.template_id) == ("1201000000000001", "1107000000000001")


def test_enforced_dlt_refuses_unregistered_senders_and_unmatched_bodies(gateway: Gateway) -> None:
    t = gateway.tenant(dlt_enforced=True)
    register(gateway, t)
    body = "Your OTP is 4821. Do not share."
    r = send(gateway, t, to="+919812345678", body=body, sender="OTHER")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_sender")
    r = send(gateway, t, to="+919812345678", body=body, sender="ACMESL")  # promotional header
    assert r.json()["code"] == "invalid_sender"
    r = send(gateway, t, to="+919812345678", body="Your OTP is 4821.", sender="ACMEBK")
    assert (r.status_code, r.json()["code"]) == (422, "template_mismatch")
    r = send(gateway, t, to="+919812345678", body=body, sender="ACMEBK")
    assert r.status_code == 202
    # Only Indian destinations are bound by DLT.
    r = send(gateway, t, to="+447911123456", body="Hello from abroad", sender="OTHER")
    assert r.status_code == 202


def test_an_opt_out_blocks_later_promotions_but_not_transactional(gateway: Gateway) -> None:
    t = gateway.tenant()
    register(gateway, t)  # ACMESL belongs to this account
    store = gateway.services.store
    assert gateway.call(handle_inbound, store, "+919812345678", "ACMESL", "thanks!") == []
    assert gateway.call(handle_inbound, store, "+919812345678", "NOBODY", "STOP") == []
    owners = gateway.call(handle_inbound, store, "09812345678", "acmesl", "stop all msgs")
    assert owners == [t.account.id]
    gateway.services.acceptor.compliance.invalidate()
    r = send(gateway, t, to="+919812345678", body="Sale!", type="promotional")
    assert (r.status_code, r.json()["code"]) == (422, "dnd_blocked")
    assert send(gateway, t, to="+919812345678", body="Your order shipped").status_code == 202
    other = gateway.tenant(name="other")
    assert (
        send(gateway, other, to="+919812345678", body="Sale!", type="promotional").status_code
        == 202
    )


def test_an_opt_out_to_an_unregistered_header_finds_the_account_that_used_it(
    gateway: Gateway,
) -> None:
    t = gateway.tenant()
    other = gateway.tenant(name="other")
    assert send(gateway, t, to="+919812345670", body="Hello", sender="SHOPIN").status_code == 202
    store = gateway.services.store
    assert gateway.call(handle_inbound, store, "+919812345670", "SHOPIN", "UNSUBSCRIBE") == [
        t.account.id
    ]
    gateway.services.acceptor.compliance.invalidate()
    r = send(gateway, t, to="+919812345670", body="Sale!", type="promotional")
    assert r.json()["code"] == "dnd_blocked"
    r = send(gateway, other, to="+919812345670", body="Sale!", type="promotional")
    assert r.status_code == 202


def test_keywords() -> None:
    assert is_opt_out("STOP") and is_opt_out(" unsubscribe ") and is_opt_out("Stop.")
    assert not is_opt_out("") and not is_opt_out("please stop")


def test_the_imported_list_blocks_live_promotions(gateway: Gateway, tmp_path: Path) -> None:
    src = tmp_path / "ncpr.csv"
    src.write_text('9812345678,0\n9812345679,"1"\n')
    dnd.import_csv(src, tmp_path)  # the data directory: beside the database file
    t = gateway.tenant(mode="live")
    register(gateway, t)
    acceptor = gateway.services.acceptor
    ten_am = int(datetime(2026, 11, 25, 4, 30, tzinfo=UTC).timestamp() * 1000)
    promo = Draft(
        to="+919812345678", body="Flat 10% off on cards today", sender="ACMESL", type="promotional"
    )
    with pytest.raises(DndBlocked):
        acceptor.build(promo, t.account, sandbox=False, now=ten_am)
    # Category 1 (banking) is accepted by the second number, and the template is banking.
    row = acceptor.build(
        Draft(
            to="+919812345679",
            body="Flat 10% off on cards today",
            sender="ACMESL",
            type="promotional",
        ),
        t.account,
        sandbox=False,
        now=ten_am,
    )
    assert (row.status, row.template_id) == ("queued", "1107000000000002")
    txn = acceptor.build(
        Draft(to="+919812345678", body="Your order shipped"), t.account, sandbox=False, now=ten_am
    )
    assert txn.status == "queued"


def test_promotions_outside_hours_are_held_until_nine_ist(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live")
    acceptor = gateway.services.acceptor
    late = int(datetime(2026, 11, 25, 16, 0, tzinfo=UTC).timestamp() * 1000)  # 21:30 IST
    nine = int(datetime(2026, 11, 26, 3, 30, tzinfo=UTC).timestamp() * 1000)
    draft = Draft(to="+919812345678", body="Sale!", type="promotional")
    row = acceptor.build(draft, t.account, sandbox=False, now=late)
    assert (row.status, row.schedule_at, row.next_attempt_at) == ("scheduled", nine, nine)
    abroad = acceptor.build(
        Draft(to="+447911123456", body="Sale!", type="promotional"),
        t.account,
        sandbox=False,
        now=late,
    )
    assert abroad.status == "queued"
    txn = acceptor.build(Draft(to="+919812345678", body="Hi"), t.account, sandbox=False, now=late)
    assert txn.status == "queued"
