"""/metrics: Prometheus text from the real app, with bounded labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway


def samples(gw: Gateway) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = gw.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_requests_and_accepted_messages_are_counted_without_ids_or_numbers(
    gateway: Gateway,
) -> None:
    t = gateway.tenant(mode="test")
    for _ in range(3):
        r = gateway.client.post(
            "/v1/messages",
            json={"to": "+919812345678", "body": "hi", "type": "otp"},
            headers=t.headers,
        )
        assert r.status_code == 202
    mid = r.json()["id"]
    gateway.client.get(f"/v1/messages/{mid}", headers=t.headers)
    gateway.client.get("/v1/nothing-here")
    m = samples(gateway)
    sends = [v for labels, v in m["dakghar_http_requests_total"]
             if labels == {"route": "send_message", "method": "POST", "status": "202"}]  # fmt: skip
    assert sends == [3.0]
    routes = {labels["route"] for labels, _ in m["dakghar_http_requests_total"]}
    assert "unmatched" in routes
    assert not any(mid in r or "+91" in r for r in routes)
    assert ({"type": "otp", "mode": "test"}, 3.0) in m["dakghar_messages_accepted_total"]
    text = gateway.client.get("/metrics").text
    assert mid not in text and "9812345678" not in text


def test_otp_conversion_is_published(gateway: Gateway) -> None:
    t = gateway.tenant(mode="test")
    r = gateway.client.post("/v1/otp", json={"to": "+919812345678"}, headers=t.headers)
    assert r.status_code == 201, r.text
    m = samples(gateway)
    assert ({"outcome": "sent"}, 1.0) in m["dakghar_otp_total"]
    assert ({"outcome": "approved"}, 0.0) in m["dakghar_otp_total"]
