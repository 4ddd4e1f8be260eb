"""Callback URLs cannot reach loopback, private, link-local or the gateway's own addresses (SSRF).

Checked three times: when a URL is set (422 ``invalid_callback_url``), before each delivery, and
at connect time by the sender's resolver (DNS rebinding); redirects are never followed.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from starlette.testclient import TestClient

from dakghar.api.app import create_app
from dakghar.errors import InvalidCallbackUrl
from dakghar.settings import Settings, WebhookSettings
from dakghar.store.sqlite import SqliteStore
from dakghar.webhooks import resolver as resolver_module
from dakghar.webhooks.resolver import GuardedResolver, RefusedAddress
from dakghar.webhooks.sender import WebhookSender
from dakghar.webhooks.signing import verify
from dakghar.webhooks.urls import check_callback_url, gateway_addresses
from tests.conftest import Gateway, make_settings
from tests.store.test_pipeline_store import queue

REFUSED = [
    "ftp://hooks.example.com/x",
    "file:///etc/passwd",
    "gopher://hooks.example.com/",
    "hooks.example.com/x",
    "//hooks.example.com/x",
    "http:/hooks.example.com/x",
    "http://user:pw@hooks.example.com/x",
    "http://user@hooks.example.com/x",
    "http://@hooks.example.com/x",
    "http:///x",
    "http://127.0.0.1/x",
    "http://127.0.0.1:9/x",
    "http://127.255.255.254/",
    "http://localhost/x",
    "http://LOCALHOST./x",
    "http://api.localhost/x",
    "http://printer.local/x",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://router.home.arpa/",
    "http://metadata/",  # a single label resolves through the search domains
    "http://2130706433/x",  # decimal
    "http://0x7f000001/x",  # hex
    "http://0x7F.0.0.1/x",
    "http://0177.0.0.1/x",  # octal
    "http://017700000001/",
    "http://127.1/x",  # short
    "http://127.0.1/x",
    "http://127.0.0.1./x",  # trailing dot
    "http://１２７.０.０.１/x",  # fullwidth digits, NFKC-normalised by IDNA
    "http://127。0。0。1/x",  # ideographic full stops
    "http://ｌｏｃａｌｈｏｓｔ/x",
    "http://[::1]/x",
    "http://[0:0:0:0:0:0:0:1]/x",
    "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped
    "http://[::ffff:7f00:1]/x",
    "http://[::ffff:169.254.169.254]/x",
    "http://[2002:7f00:1::]/x",  # 6to4 around 127.0.0.1
    "http://[fe80::1%25eth0]/x",  # link-local with a zone
    "http://[fc00::1]/x",  # unique local
    "http://[ff02::1]/x",  # multicast
    "http://[::]/x",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://0xa9fea9fe/",  # the same, in hex
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # CGNAT
    "http://100.127.255.254/",
    "http://224.0.0.1/",  # multicast
    "http://239.255.255.250/",
    "http://0.0.0.0/",
    "http://0/",
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://198.18.0.1/",  # benchmarking, not global
    "http://256.0.0.1/",  # not an address, and not a name either
    "http://1.2.3.4.5/",
    "http://127%2e0%2e0%2e1/",  # percent-encoded host
    "http://hooks.example.com\\@127.0.0.1/",  # backslash in the authority
    "http://hooks.example.com\t/x",  # control characters are stripped by some parsers
    "http://hooks.exa mple.com/x",
    "http://hooks.example.com:0/x",
    "http://hooks.example.com:99999/x",
]

ACCEPTED = [
    "https://hooks.example.com/sms",
    "http://hooks.example.com:8080/sms?x=1#f",
    "https://HOOKS.Example.COM./sms",
    "https://api.acme.co.in/v1/dakghar",
    "https://xn--bcher-kva.example/hook",
    "https://bücher.example/hook",
    "http://93.184.216.34/hook",  # a public address literal
    "http://[2606:4700:4700::1111]/hook",
    "https://127.0.0.1.nip.io/hook",  # a name: only DNS can tell, so the resolver judges it
]


@pytest.mark.parametrize("url", REFUSED)
def test_every_form_of_a_forbidden_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidCallbackUrl) as info:
        check_callback_url(url, allow_private=False)
    assert info.value.code == "invalid_callback_url" and info.value.status == 422
    assert info.value.errors and info.value.errors[0]["field"] == "callback_url"


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_looking_urls_are_accepted_unchanged(url: str) -> None:
    assert check_callback_url(url, allow_private=False) == url


def test_private_networks_allow_everything_but_other_schemes_and_credentials() -> None:
    for url in ["http://127.0.0.1:9/x", "http://localhost:8080/", "http://0x7f000001/",
                "http://[::1]/", "http://169.254.169.254/", "http://10.1.2.3/", "http://metadata/",
                "http://printer.local/"]:  # fmt: skip
        assert check_callback_url(url, allow_private=True) == url
    for url in ["ftp://127.0.0.1/", "http://u:p@127.0.0.1/", "http://256.0.0.1/",
                "http://127%2e0%2e0%2e1/", "http://127.0.0.1:0/"]:  # fmt: skip
        with pytest.raises(InvalidCallbackUrl):
            check_callback_url(url, allow_private=True)


def test_the_gateways_own_addresses_are_refused() -> None:
    own = [("93.184.216.34", 443), ("api.dakghar.example", 443), ("2606:4700::1", 0)]
    for url in ["https://93.184.216.34/v1/messages", "https://api.dakghar.example./v1/x",
                "http://[::ffff:93.184.216.34]:443/", "http://[2606:4700::1]:8080/"]:  # fmt: skip
        with pytest.raises(InvalidCallbackUrl, match="gateway"):
            check_callback_url(url, allow_private=False, own=own)
    # same host, another port: another service, not the gateway's API
    assert check_callback_url("http://93.184.216.34:8443/", allow_private=False, own=own)


def test_gateway_addresses_of_a_wildcard_listener_hold_loopback_and_the_host_name() -> None:
    settings = Settings(host="0.0.0.0", port=8123)
    own = gateway_addresses(settings)
    assert {("127.0.0.1", 8123), ("localhost", 8123), (socket.gethostname(), 8123)} <= own
    assert gateway_addresses(settings) is own  # cached
    assert ("203.0.113.7", 80) in gateway_addresses(Settings(host="203.0.113.7", port=80))


# --- through the real app ------------------------------------------------------------------


@pytest.fixture
def private_gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = make_settings(tmp_path, webhooks=WebhookSettings(allow_private_networks=True))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Gateway(client, settings)


def test_a_message_with_a_loopback_callback_is_refused_with_invalid_callback_url(
    gateway: Gateway,
) -> None:
    t = gateway.tenant()
    for url in ["http://127.0.0.1:9/x", "http://0x7f000001/", "http://169.254.169.254/",
                "http://u:pw@hooks.example.com/", "http://localhost:8080/v1/messages"]:  # fmt: skip
        r = gateway.client.post(
            "/v1/messages",
            json={"to": "+919812345678", "body": "hi", "callback_url": url},
            headers=t.headers,
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["code"] == "invalid_callback_url"
        assert problem["errors"][0]["field"] == "callback_url"
    assert gateway.client.get("/v1/messages", headers=t.headers).json()["data"] == []
    ok = gateway.client.post(
        "/v1/messages",
        json={"to": "+919812345678", "body": "hi", "callback_url": "https://hooks.example.com/"},
        headers=t.headers,
    )
    assert ok.status_code == 202, ok.text


def test_a_bad_callback_rejects_only_its_batch_entry(gateway: Gateway) -> None:
    t = gateway.tenant()
    entries = [
        {"to": "+919812345678", "body": "a", "callback_url": "https://hooks.example.com/"},
        {"to": "+919812345679", "body": "b", "callback_url": "http://[::1]:8080/"},
        {"to": "+919812345670", "body": "c"},
    ]
    r = gateway.client.post("/v1/messages/batch", json={"messages": entries}, headers=t.headers)
    assert r.status_code == 202, r.text
    out = r.json()
    assert len(out["accepted"]) == 2
    assert [(x["index"], x["code"], x["field"]) for x in out["rejected"]] == [
        (1, "invalid_callback_url", "callback_url")
    ]


def test_a_bad_shared_callback_refuses_the_whole_batch(gateway: Gateway) -> None:
    t = gateway.tenant()
    r = gateway.client.post(
        "/v1/messages/batch",
        json={"to": ["+919812345678", "+919812345679"], "body": "x",
              "callback_url": "http://10.0.0.8/hook"},
        headers=t.headers,
    )  # fmt: skip
    assert r.status_code == 422 and r.json()["code"] == "invalid_callback_url"


def test_private_networks_setting_accepts_a_loopback_callback(private_gateway: Gateway) -> None:
    t = private_gateway.tenant()
    r = private_gateway.client.post(
        "/v1/messages",
        json={"to": "+919812345678", "body": "hi", "callback_url": "http://127.0.0.1:9/x"},
        headers=t.headers,
    )
    assert r.status_code == 202, r.text
    r = private_gateway.client.post(
        "/v1/messages",
        json={"to": "+919812345678", "body": "hi", "callback_url": "http://u:p@127.0.0.1:9/x"},
        headers=t.headers,
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_callback_url"


# --- the resolver ----------------------------------------------------------------------------


class FakeResolver(AbstractResolver):
    """Answers from a table, as a DNS server under an attacker's control would."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.table[host]
        ]

    async def close(self) -> None:
        return None


async def test_the_resolver_refuses_a_name_that_resolves_to_loopback() -> None:
    guarded = GuardedResolver(allow_private=False)
    try:
        with pytest.raises(RefusedAddress, match="loopback"):
            await guarded.resolve("localhost", 80, socket.AF_UNSPEC)
    finally:
        await guarded.close()
    open_ = GuardedResolver(allow_private=True)
    try:
        hosts = {r["host"] for r in await open_.resolve("localhost", 80, socket.AF_INET)}
    finally:
        await open_.close()
    assert "127.0.0.1" in hosts


async def test_the_resolver_keeps_public_addresses_and_drops_the_rest() -> None:
    fake = FakeResolver(
        {
            "mixed.example.com": ["93.184.216.34", "127.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0"],
            "rebind.example.com": ["169.254.169.254", "::1"],
            "self.example.com": ["93.184.216.34"],
        }
    )
    guarded = GuardedResolver(fake, own=[("93.184.216.34", 443)])
    hosts = [r["host"] for r in await guarded.resolve("mixed.example.com", 80)]
    assert hosts == ["93.184.216.34"]
    with pytest.raises(RefusedAddress, match=re.escape("link-local 169.254.169.254, loopback ::1")):
        await guarded.resolve("rebind.example.com", 80)
    with pytest.raises(RefusedAddress, match="own"):
        await guarded.resolve("self.example.com", 443)


# --- the sender ------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A local application: ``/hook`` answers ``answer``, ``/internal`` must never be hit."""

    answer: Callable[[], web.StreamResponse]
    hooks: list[tuple[bytes, str]] = field(default_factory=list)
    internal: int = 0
    port: int = 0


def redirect() -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": "/internal"})


def no_content() -> web.StreamResponse:
    return web.Response(status=204)


@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[Receiver]:
    rec = Receiver(getattr(request, "param", no_content))

    async def hook(req: web.Request) -> web.StreamResponse:
        rec.hooks.append((await req.read(), req.headers.get("Dakghar-Signature", "")))
        return rec.answer()

    async def internal(req: web.Request) -> web.StreamResponse:
        rec.internal += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_route("*", "/internal", internal)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


async def deliver_one(
    tmp_path: Path, url: str, until: Callable[[WebhookSender], bool], **options: Any
) -> tuple[str, str | None, str | None, int]:
    """Queue one 'sent' webhook to ``url``, run a sender until ``until``; the event's row
    (status None: delivered, so no row is left)."""
    store = SqliteStore(f"sqlite:///{tmp_path}/w.db")
    await store.open()
    acc = await store.create_account(name="a", balance_milli=0, webhook_events="sent")
    [mid] = await queue(store, acc.id, 1, callback_url=url)
    await store.claim(1, [acc.id], 1, lease_ms=10_000)
    await store.mark_sent(mid, "smsc", ["p1"])
    sender = WebhookSender(
        store, poll_interval=0.02, base_delay=0.01, rng=random.Random(1), **options
    )
    await sender.start()
    try:
        deadline = time.monotonic() + 10
        while not until(sender) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await sender.stop()
        await store.close()
    with sqlite3.connect(tmp_path / "w.db") as db:
        row = db.execute(
            "SELECT status, last_error, attempts FROM webhook_events WHERE message_id = ?", (mid,)
        ).fetchone()
    if row is None:
        return acc.webhook_secret, None, None, 0  # delivered: the event left the outbox
    return acc.webhook_secret, *row


async def test_with_private_networks_a_loopback_receiver_gets_the_signed_webhook(
    tmp_path: Path, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    secret, status, _, _ = await deliver_one(
        tmp_path, url, lambda s: s.delivered >= 1, allow_private=True
    )
    assert status is None and len(receiver.hooks) == 1  # delivered
    body, signature = receiver.hooks[0]
    assert verify(secret, body, signature, now=int(time.time()))


@pytest.mark.parametrize("receiver", [redirect], indirect=True)
async def test_a_redirect_is_a_failed_attempt_and_its_target_is_never_hit(
    tmp_path: Path, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    _, status, error, attempts = await deliver_one(
        tmp_path, url, lambda s: s.failed_attempts >= 2, allow_private=True
    )
    assert len(receiver.hooks) >= 2 and receiver.internal == 0
    assert status == "pending" and attempts >= 2  # retried like any failure
    assert error == "HTTP 302: redirect not followed"


async def test_a_stored_loopback_url_fails_at_once_without_a_connection(
    tmp_path: Path, receiver: Receiver
) -> None:
    # e.g. accepted before the rule existed, or while private networks were allowed
    url = f"http://127.0.0.1:{receiver.port}/hook"
    _, status, error, attempts = await deliver_one(tmp_path, url, lambda s: s.failed_attempts >= 1)
    assert receiver.hooks == []
    assert status == "failed" and attempts == 1  # the URL cannot change: no retries
    assert error is not None and error.startswith("refused: ") and "loopback" in error


async def test_a_name_rebound_to_loopback_is_never_connected_to_and_is_retried(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attacker's name passes the set-time check, then resolves to 127.0.0.1.
    fake = FakeResolver({"hooks.attacker.example": ["127.0.0.1"]})
    monkeypatch.setattr(resolver_module, "DefaultResolver", lambda: fake)
    url = f"http://hooks.attacker.example:{receiver.port}/hook"
    check_callback_url(url, allow_private=False)
    _, status, error, _ = await deliver_one(tmp_path, url, lambda s: s.failed_attempts >= 2)
    assert receiver.hooks == []
    assert status == "pending"  # DNS can change, so the usual backoff applies
    assert error is not None and "resolves only to refused addresses: loopback 127.0.0.1" in error
    # the same fake with private networks allowed does connect: the refusal above was the guard
    _, status, _, _ = await deliver_one(
        tmp_path / "again", url, lambda s: s.delivered >= 1, allow_private=True
    )
    assert status is None and len(receiver.hooks) == 1  # delivered
