"""Sending, reading, listing and canceling messages through the real app and store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Gateway

PROBLEM = "application/problem+json"


def send(gw: Gateway, headers: dict[str, str], **body: object) -> object:
    return gw.client.post("/v1/messages", json=body, headers=headers)


def test_a_valid_message_is_accepted_queued_and_described(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live")
    r = gateway.client.post(
        "/v1/messages",
        json={"to": "098123 45678", "body": "Your order 123 has shipped", "reference": "o-123"},
        headers=t.headers,
    )
    assert r.status_code == 202
    m = r.json()
    assert m["id"].startswith("msg_")
    assert m["to"] == "+919812345678"
    assert m["status"] == "queued"
    assert (m["segments"], m["encoding"], m["price"]) == (1, "GSM-7", 1.0)
    assert m["carrier"] == "Vi"
    assert m["reference"] == "o-123"
    assert m["type"] == "transactional"
    assert m["created_at"].endswith("Z")
    got = gateway.client.get(f"/v1/messages/{m['id']}", headers=t.headers).json()
    assert got["events"] == [{"status": "queued", "at": m["created_at"], "detail": "accepted"}]
    account = gateway.client.get("/v1/account", headers=t.headers).json()
    assert account["balance"] == 99.0


def test_hindi_text_is_ucs2_and_priced_per_segment(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live")
    body = "आपका ओटीपी कोड तैयार है। " * 4  # > 70 UTF-16 units
    m = gateway.client.post(
        "/v1/messages", json={"to": "+919812345678", "body": body}, headers=t.headers
    ).json()
    assert m["encoding"] == "UCS-2"
    assert m["segments"] == 2
    assert m["price"] == 2.0


def test_sandbox_messages_are_never_billed(gateway: Gateway) -> None:
    t = gateway.tenant(mode="test", balance_milli=0)
    r = send(gateway, t.headers, to="+919812345678", body="hi")
    assert r.status_code == 202
    assert r.json()["price"] == 0.0


def test_a_message_the_balance_cannot_cover_is_refused_with_402(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live", balance_milli=500)
    r = send(gateway, t.headers, to="+919812345678", body="hi")
    assert r.status_code == 402
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "insufficient_credits"
    listing = gateway.client.get("/v1/messages", headers=t.headers).json()
    assert listing["data"] == []


def test_every_input_error_has_its_stable_code(gateway: Gateway) -> None:
    t = gateway.tenant(mode="live", allowed_countries="IN", segment_limit=2)
    cases = [
        ({"to": "12", "body": "x"}, "invalid_number"),
        ({"to": "+442079460958", "body": "x"}, "invalid_number"),  # London landline
        ({"to": "+447911123456", "body": "x"}, "country_not_allowed"),
        ({"to": "+919812345678", "body": "   "}, "body_empty"),
        ({"to": "+919812345678", "body": "a" * 400}, "body_too_long"),
        ({"to": "+919812345678", "body": "x", "sender": "<script>"}, "invalid_sender"),
        ({"to": "+919812345678"}, "validation_error"),
        ({"to": 919812345678, "body": "x"}, "validation_error"),
        ({"to": "+919812345678", "body": "x", "type": "spam"}, "validation_error"),
        ({"to": "+919812345678", "body": "x", "from": "ME"}, "validation_error"),
        ({"to": "+919812345678", "body": "x", "callback_url": "ftp://x"}, "invalid_callback_url"),
        ({"to": "+919812345678", "body": "x", "validity_seconds": 5}, "validation_error"),
    ]
    for body, code in cases:
        r = gateway.client.post("/v1/messages", json=body, headers=t.headers)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert problem["code"] == code, (body, problem)
        assert problem["status"] == 422
        assert problem["type"] == f"urn:dakghar:error:{code}"
    assert gateway.client.get("/v1/messages", headers=t.headers).json()["data"] == []


def test_malformed_bodies_are_validation_errors_not_500s(gateway: Gateway) -> None:
    t = gateway.tenant()
    for raw in [b"", b"{", b"[]", b"null", b"\xff\xfe\x00", b'{"to": "\xff"}', b"{}" * 10]:
        r = gateway.client.post(
            "/v1/messages", content=raw, headers={**t.headers, "content-type": "application/json"}
        )
        assert r.status_code == 422, raw
        assert r.json()["code"] == "validation_error"


def test_a_huge_body_is_refused_before_it_is_read(gateway: Gateway) -> None:
    t = gateway.tenant()
    r = gateway.client.post(
        "/v1/messages",
        content=b'{"to": "+919812345678", "body": "' + b"a" * 400_000 + b'"}',
        headers={**t.headers, "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


def test_a_future_schedule_makes_the_message_scheduled(gateway: Gateway) -> None:
    t = gateway.tenant()
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    m = send(gateway, t.headers, to="+919812345678", body="later", schedule_at=at).json()
    assert m["status"] == "scheduled"
    assert m["schedule_at"] is not None
    r = send(gateway, t.headers, to="+919812345678", body="x", schedule_at="2026-01-01T10:00:00")
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_cancel_refunds_and_a_canceled_message_cannot_be_canceled_again(
    gateway: Gateway,
) -> None:
    t = gateway.tenant(mode="live")
    m = send(gateway, t.headers, to="+919812345678", body="bye").json()
    r = gateway.client.post(f"/v1/messages/{m['id']}/cancel", headers=t.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "canceled"
    assert r.json()["error_code"] == "canceled"
    assert gateway.client.get("/v1/account", headers=t.headers).json()["balance"] == 100.0
    again = gateway.client.post(f"/v1/messages/{m['id']}/cancel", headers=t.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"  # API.md's code for a state that forbids it
    events = gateway.client.get(f"/v1/messages/{m['id']}", headers=t.headers).json()["events"]
    assert [e["status"] for e in events] == ["queued", "canceled"]


def test_another_accounts_message_is_404_never_403(gateway: Gateway) -> None:
    a = gateway.tenant(name="a")
    b = gateway.tenant(name="b")
    m = send(gateway, a.headers, to="+919812345678", body="mine").json()
    for r in (
        gateway.client.get(f"/v1/messages/{m['id']}", headers=b.headers),
        gateway.client.post(f"/v1/messages/{m['id']}/cancel", headers=b.headers),
    ):
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"
    assert gateway.client.get("/v1/messages", headers=b.headers).json()["data"] == []


def test_listing_pages_with_a_cursor_and_filters(gateway: Gateway) -> None:
    t = gateway.tenant()
    ids = []
    for i in range(7):
        to = "+919812345678" if i % 2 else "+917012345678"
        ids.append(send(gateway, t.headers, to=to, body=f"m{i}", reference=f"r{i}").json()["id"])
    seen: list[str] = []
    url = "/v1/messages?limit=3"
    while url:
        page = gateway.client.get(url, headers=t.headers).json()
        seen += [m["id"] for m in page["data"]]
        url = f"/v1/messages?limit=3&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert seen == list(reversed(ids))
    by_to = gateway.client.get("/v1/messages?to=9812345678", headers=t.headers).json()["data"]
    assert len(by_to) == 3 and all(m["to"] == "+919812345678" for m in by_to)
    by_ref = gateway.client.get("/v1/messages?reference=r4", headers=t.headers).json()["data"]
    assert [m["id"] for m in by_ref] == [ids[4]]
    for bad in ("limit=0", "limit=5000", "status=bogus", "cursor=@@", "since=yesterday"):
        r = gateway.client.get(f"/v1/messages?{bad}", headers=t.headers)
        assert r.status_code == 422, bad


def test_smart_encoding_keeps_curly_quotes_in_one_gsm_segment(gateway: Gateway) -> None:
    t = gateway.tenant(smart_encoding=True)
    m = send(gateway, t.headers, to="+919812345678", body="It’s “ready” — see you…").json()
    assert m["encoding"] == "GSM-7"
    assert m["body"] == 'It\'s "ready" - see you...'


def test_promotional_to_the_sandbox_dnd_number_is_refused_but_otp_goes_through(
    gateway: Gateway,
) -> None:
    t = gateway.tenant(mode="test")
    r = send(gateway, t.headers, to="+917000000004", body="Sale!", type="promotional")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["code"] == "dnd_blocked"
    assert "7000000004" not in problem["detail"]  # the number is masked
    for mtype in ("otp", "transactional"):
        ok = send(gateway, t.headers, to="+917000000004", body="Your code", type=mtype)
        assert ok.status_code == 202, ok.text
    # Live traffic is not judged by the sandbox registry.
    live = gateway.tenant(mode="live")
    r = send(gateway, live.headers, to="+917000000004", body="Sale!", type="promotional")
    assert r.status_code == 202


def test_a_message_with_no_sender_anywhere_is_refused_not_sent_blank(gateway: Gateway) -> None:
    t = gateway.tenant(default_sender=None)
    r = gateway.client.post(
        "/v1/messages", json={"to": "+919812345678", "body": "hi"}, headers=t.headers
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_sender"
    assert "no sender" in r.json()["detail"]
    r = gateway.client.post(
        "/v1/messages",
        json={"to": "+919812345678", "body": "hi", "sender": "ACMEIN"},
        headers=t.headers,
    )
    assert r.status_code == 202 and r.json()["sender"] == "ACMEIN"


def test_a_schedule_far_in_the_past_is_refused_a_moment_ago_is_now(gateway: Gateway) -> None:
    t = gateway.tenant()
    for when in ("0001-01-01T00:00:00Z", "2020-01-01T00:00:00Z"):
        r = gateway.client.post(
            "/v1/messages",
            json={"to": "+919812345678", "body": "hi", "schedule_at": when},
            headers=t.headers,
        )
        assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
        assert "past" in r.json()["detail"]
    skewed = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    r = gateway.client.post(
        "/v1/messages",
        json={"to": "+919812345678", "body": "hi", "schedule_at": skewed},
        headers=t.headers,
    )
    assert r.status_code == 202 and r.json()["status"] == "queued"
