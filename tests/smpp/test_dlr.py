"""Delivery receipt parsing across the vendor variants seen in the wild, and formatting."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dakghar.smpp import pdu as p
from dakghar.smpp.dlr import (
    _CANONICAL,
    MESSAGE_STATES,
    DeliveryReceipt,
    ReceiptStat,
    _search_fields,
    _split_fields,
    format_receipt,
    is_receipt,
    message_id_forms,
    parse_receipt,
)
from dakghar.smpp.tlv import Tag

STANDARD = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2611250110 done date:2611250111 "
    b"stat:DELIVRD err:000 text:Your OTP is 1234"
)


def test_standard_appendix_b_receipt_parses_every_field() -> None:
    receipt = parse_receipt(STANDARD)
    assert receipt == DeliveryReceipt(
        id="0123456789",
        stat=ReceiptStat.DELIVRD,
        submitted=1,
        delivered=1,
        submit_date=datetime(2026, 11, 25, 1, 10),
        done_date=datetime(2026, 11, 25, 1, 11),
        err="000",
        text="Your OTP is 1234",
    )


@pytest.mark.parametrize(
    ("text", "id_", "stat"),
    [
        # Capitalised keys, underscores in the date keys, seconds in the dates.
        (
            "ID:ab12 SUB:001 DLVRD:000 SUBMIT_DATE:261125011022 DONE_DATE:261125011530 "
            "STAT:UNDELIV ERR:034 Text:hello",
            "ab12",
            ReceiptStat.UNDELIV,
        ),
        # Fields in another order, some missing.
        ("stat:EXPIRED err:001 id:99", "99", ReceiptStat.EXPIRED),
        # Long stat words some SMSCs use.
        ("id:1 stat:DELIVERED", "1", ReceiptStat.DELIVRD),
        ("id:1 stat:UNDELIVERABLE", "1", ReceiptStat.UNDELIV),
        ("id:1 stat:REJECTED", "1", ReceiptStat.REJECTD),
        ("id:1 stat:accepted", "1", ReceiptStat.ACCEPTD),
        ("id:1 stat:ENROUTE", "1", ReceiptStat.ENROUTE),
        ("id:1 stat:DELETED", "1", ReceiptStat.DELETED),
        ("id:1 stat:FAILED", "1", ReceiptStat.UNDELIV),
        ("id:1 stat:WHATEVER", "1", ReceiptStat.UNKNOWN),
        ("id:1 stat:2", "1", ReceiptStat.DELIVRD),
        # Extra vendor fields, double spaces, no space after the colon.
        ("id:xyz  sub:1 dlvrd:1 mccmnc:40445 stat:DELIVRD err:0 text:", "xyz", ReceiptStat.DELIVRD),
        ("id: 42 stat: DELIVRD", "42", ReceiptStat.DELIVRD),
        ("submitdate:2611250110 donedate:2611250111 id:7 stat:DELIVRD", "7", ReceiptStat.DELIVRD),
    ],
)
def test_vendor_variants_parse(text: str, id_: str, stat: ReceiptStat) -> None:
    receipt = parse_receipt(text)
    assert receipt is not None
    assert (receipt.id, receipt.stat) == (id_, stat)


def test_dates_with_seconds_and_with_underscores() -> None:
    receipt = parse_receipt("id:1 submit_date:261125011022 done_date:2611250115 stat:DELIVRD")
    assert receipt is not None
    assert receipt.submit_date == datetime(2026, 11, 25, 1, 10, 22)
    assert receipt.done_date == datetime(2026, 11, 25, 1, 15)


def test_unparsable_dates_and_counts_become_none() -> None:
    receipt = parse_receipt(
        "id:1 sub:x dlvrd: submit date:26-13-99 done date:9999999999 stat:DELIVRD"
    )
    assert receipt is not None
    assert (receipt.submitted, receipt.delivered) == (None, None)
    assert (receipt.submit_date, receipt.done_date) == (None, None)


def test_text_may_contain_keys_and_runs_to_the_end() -> None:
    receipt = parse_receipt("id:5 stat:DELIVRD err:000 text:your id:77 stat:none")
    assert receipt is not None
    assert (receipt.id, receipt.stat, receipt.text) == (
        "5",
        ReceiptStat.DELIVRD,
        "your id:77 stat:none",
    )


def test_an_ordinary_mo_message_is_not_a_receipt() -> None:
    assert parse_receipt(b"Hello, please call me") is None
    assert parse_receipt("my id:42 is here") is None


def test_tlvs_win_over_the_text() -> None:
    receipt = parse_receipt(
        STANDARD,
        {
            Tag.receipted_message_id: "75bcd15",
            Tag.message_state: 5,
            Tag.network_error_code: b"\x03\x00\x22",
        },
    )
    assert receipt is not None
    assert (receipt.id, receipt.stat) == ("75bcd15", ReceiptStat.UNDELIV)
    assert receipt.network_error_code == b"\x03\x00\x22"
    assert receipt.text == "Your OTP is 1234"


def test_tlvs_alone_make_a_receipt() -> None:
    receipt = parse_receipt(b"", {Tag.receipted_message_id: "abc", Tag.message_state: 2})
    assert receipt is not None
    assert (receipt.id, receipt.stat) == ("abc", ReceiptStat.DELIVRD)


def test_hex_and_decimal_ids_name_the_same_message() -> None:
    receipt = parse_receipt("id:75BCD15 stat:DELIVRD")
    assert receipt is not None
    assert receipt.matches("123456789")
    assert receipt.matches("75bcd15")
    assert not receipt.matches("123456788")
    assert "75bcd15" in message_id_forms("0123456789")


def test_message_state_ints_map_to_every_stat() -> None:
    assert set(MESSAGE_STATES.values()) == set(ReceiptStat)
    for state, stat in MESSAGE_STATES.items():
        assert stat.message_state == state
    assert not ReceiptStat.ENROUTE.is_final and ReceiptStat.UNDELIV.is_final


@pytest.mark.parametrize(
    ("esm_class", "expected"),
    [(0x04, True), (0x08, True), (0x20, True), (0x44, True), (0x00, False), (0x40, False)],
)
def test_is_receipt_reads_the_esm_class_message_type(esm_class: int, expected: bool) -> None:
    assert is_receipt(p.DeliverSm(esm_class=esm_class)) is expected


def test_is_receipt_accepts_receipt_tlvs_with_a_plain_esm_class() -> None:
    pdu = p.DeliverSm(tlvs={Tag.receipted_message_id: "1", Tag.message_state: 2})
    assert is_receipt(pdu)
    assert not is_receipt(p.SubmitSm(esm_class=4))


def test_format_receipt_round_trips_through_parse() -> None:
    text = format_receipt(
        "abc123",
        ReceiptStat.DELIVRD,
        datetime(2026, 11, 25, 1, 10),
        datetime(2026, 11, 25, 1, 11),
        text="Your OTP is 1234 and more text",
    )
    assert text == (
        "id:abc123 sub:001 dlvrd:001 submit date:2611250110 done date:2611250111 "
        "stat:DELIVRD err:000 text:Your OTP is 1234 and"
    )
    receipt = parse_receipt(text)
    assert receipt is not None
    assert (receipt.id, receipt.stat, receipt.delivered) == ("abc123", ReceiptStat.DELIVRD, 1)
    failed = parse_receipt(
        format_receipt(
            "x", ReceiptStat.UNDELIV, datetime(2026, 1, 1), datetime(2026, 1, 1), err="034"
        )
    )
    assert failed is not None
    assert (failed.delivered, failed.err) == (0, "034")


# Values near the canonical layout: tokens that may hold a colon, a space or a key's name.
_TOKEN = st.text(st.sampled_from("0aZ-_: \nstatidtx"), max_size=8) | st.sampled_from(
    ["001", "DELIVRD", "2612031230", "stat", "text", "id:1", ""]
)


@given(
    values=st.lists(_TOKEN, min_size=7, max_size=7),
    text=st.none() | st.text(max_size=30),
    space=st.sampled_from(["", " "]),
)
def test_the_canonical_fast_path_reads_what_the_general_parser_reads(
    values: list[str], text: str | None, space: str
) -> None:
    keys = ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err")
    receipt = " ".join(f"{k}:{v}" for k, v in zip(keys, values, strict=True))
    if text is not None:
        receipt += f" text:{space}{text}"
    assert _split_fields(receipt) == _search_fields(receipt)


@pytest.mark.parametrize("after", ["\r", "\n", "\t x", " ", "  y", "\u2003z"])
def test_the_fast_path_takes_one_whitespace_after_text_as_the_general_parser_does(
    after: str,
) -> None:
    receipt = "id:1 sub:001 dlvrd:001 submit date:1 done date:1 stat:DELIVRD err:000 text:"
    assert _split_fields(receipt + after) == _search_fields(receipt + after)


def test_the_standard_layout_takes_the_fast_path() -> None:
    assert _CANONICAL.match(STANDARD.decode()) is not None
    assert _split_fields(STANDARD.decode())["text"] == "Your OTP is 1234"
