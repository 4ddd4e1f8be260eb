"""Local stand-ins for the providers' APIs, on 127.0.0.1:0, speaking their documented formats.

Each fake checks credentials the provider's way and answers as the provider does: success,
its own error bodies, HTTP 429 with Retry-After, 5xx and slow answers (timeouts). ``script`` lists
the behaviour for the next requests (``"ok"``, ``"429"``, ``"500"``, ``"slow"``, ``"bad_number"``,
``"auth"``); ``default`` applies after it. Only requests answered with success are in
``accepted``: that is what the provider took, and what "sent twice" is counted against.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

SECRET = "s3cret-token"  # every fake's auth token / api secret / authkey
ACCOUNT = "AC0123456789abcdef"  # Twilio account SID / Plivo auth id / Vonage api key
SLOW_SECONDS = 1.5


class FakeProvider:
    """One provider's send (and balance) API."""

    def __init__(self, kind: str, *, delay: float = 0.0) -> None:
        self.kind = kind
        self.delay = delay
        self.script: list[str] = []
        self.default = "ok"
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        handler = getattr(self, f"_{self.kind}")
        balance = getattr(self, f"_{self.kind}_balance")
        paths = {
            "twilio": (f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
                       f"/2010-04-01/Accounts/{ACCOUNT}/Balance.json"),
            "plivo": (f"/v1/Account/{ACCOUNT}/Message/", f"/v1/Account/{ACCOUNT}/"),
            "vonage": ("/sms/json", "/account/get-balance"),
            "msg91": ("/api/v2/sendsms", "/api/balance.php"),
        }[self.kind]  # fmt: skip
        app.router.add_post(paths[0], self._wrap(handler))
        app.router.add_get(paths[1], balance)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _wrap(self, handler: Any) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            mode = self.script.pop(0) if self.script else self.default
            if request.content_type == "application/json":
                body = await request.json()
            else:
                body = dict(await request.post())
            self.requests.append({"mode": mode, "body": body, "headers": dict(request.headers)})
            if self.delay:
                await asyncio.sleep(self.delay)
            if mode == "slow":
                await asyncio.sleep(SLOW_SECONDS)
                return web.json_response({"error": "too late"}, status=503)
            if mode == "500":
                return web.json_response({"error": "internal"}, status=500)
            if mode == "429":
                return self._throttled()
            response: web.StreamResponse = await handler(request, body, mode)
            return response

        return handle

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):032x}"

    def _basic_ok(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{ACCOUNT}:{SECRET}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _throttled(self) -> web.Response:
        bodies = {
            "twilio": {"code": 20429, "message": "Too Many Requests", "status": 429},
            "plivo": {"api_id": "x", "error": "too many requests"},
            "vonage": {"status": "1", "error-text": "Throttled"},
            "msg91": {"type": "error", "message": "Too many requests"},
        }
        return web.json_response(bodies[self.kind], status=429, headers={"Retry-After": "1"})

    # -- Twilio ------------------------------------------------------------------------------

    async def _twilio(self, request: web.Request, form: dict[str, Any], mode: str) -> web.Response:
        if not self._basic_ok(request) or mode == "auth":
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401},
                                     status=401)  # fmt: skip
        to = str(form.get("To", ""))
        if mode == "bad_number" or not (to.startswith("+") and to[1:].isdigit()):
            return web.json_response(
                {"code": 21211, "message": f"The 'To' number {to} is not valid", "status": 400},
                status=400,
            )
        sid = self._id("SM")
        self.accepted.append({"id": sid, "to": to, "body": form})
        return web.json_response({"sid": sid, "status": "queued", "to": to}, status=201)

    async def _twilio_balance(self, request: web.Request) -> web.Response:
        return web.json_response({"balance": "12.50", "currency": "USD", "account_sid": ACCOUNT})

    # -- Plivo -------------------------------------------------------------------------------

    async def _plivo(self, request: web.Request, body: dict[str, Any], mode: str) -> web.Response:
        if not self._basic_ok(request) or mode == "auth":
            return web.json_response({"api_id": "x", "error": "authentication failed"}, status=401)
        dst = str(body.get("dst", ""))
        if mode == "bad_number" or not dst.isdigit():
            return web.json_response({"api_id": "x", "error": "invalid dst parameter"}, status=400)
        uuid = self._id("")
        self.accepted.append({"id": uuid, "to": dst, "body": body})
        return web.json_response(
            {"api_id": "x", "message": "message(s) queued", "message_uuid": [uuid]}, status=202
        )

    async def _plivo_balance(self, request: web.Request) -> web.Response:
        return web.json_response({"auth_id": ACCOUNT, "cash_credits": "7.2500"})

    # -- Vonage ------------------------------------------------------------------------------

    async def _vonage(self, request: web.Request, form: dict[str, Any], mode: str) -> web.Response:
        if form.get("api_key") != ACCOUNT or form.get("api_secret") != SECRET or mode == "auth":
            return self._vonage_answer([{"status": "4", "error-text": "Bad Credentials"}])
        to = str(form.get("to", ""))
        if mode == "bad_number" or not to.isdigit():
            return self._vonage_answer([{"status": "6", "error-text": "Unroutable message"}])
        parts = 2 if len(str(form.get("text", ""))) > 160 else 1
        entries = []
        for _ in range(parts):
            mid = self._id("")
            entries.append({"to": to, "message-id": mid, "status": "0",
                            "remaining-balance": "3.14", "message-price": "0.03"})  # fmt: skip
        self.accepted.append({"id": entries[0]["message-id"], "to": to, "body": form})
        return self._vonage_answer(entries)

    @staticmethod
    def _vonage_answer(entries: list[dict[str, str]]) -> web.Response:
        return web.json_response({"message-count": str(len(entries)), "messages": entries})

    async def _vonage_balance(self, request: web.Request) -> web.Response:
        return web.json_response({"value": 3.14, "autoReload": False})

    # -- MSG91 -------------------------------------------------------------------------------

    async def _msg91(self, request: web.Request, body: dict[str, Any], mode: str) -> web.Response:
        if request.headers.get("authkey") != SECRET or mode == "auth":
            return web.json_response(
                {"type": "error", "message": "Invalid authkey", "code": "207"}, status=401
            )
        sms = body.get("sms") or [{}]
        to = (sms[0].get("to") or [""])[0]
        if mode == "bad_number" or not str(to).isdigit():
            return web.json_response({"type": "error", "message": "Invalid mobile", "code": "202"})
        rid = self._id("")[:24]
        self.accepted.append({"id": rid, "to": to, "body": body})
        return web.json_response({"type": "success", "message": rid})

    async def _msg91_balance(self, request: web.Request) -> web.Response:
        return web.Response(text="1500")


@contextmanager
def provider_in_thread(kind: str, **options: Any) -> Iterator[FakeProvider]:
    """A fake provider on its own event loop in a thread (for tests that run the whole app)."""
    fake = FakeProvider(kind, **options)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def table(kind: str, base_url: str, **extra: Any) -> dict[str, Any]:
    """A ``[[connectors]]`` table for ``kind`` pointed at a fake (credentials from env)."""
    token = "FAKE_TOKEN"
    tables: dict[str, dict[str, Any]] = {
        "twilio": {"account_sid": ACCOUNT, "auth_token_env": token, "sender": "+15005550006"},
        "plivo": {"auth_id": ACCOUNT, "auth_token_env": token, "sender": "DAKGHR"},
        "vonage": {"api_key": ACCOUNT, "api_secret_env": token, "sender": "DAKGHR",
                   "signature_secret_env": "FAKE_SIG"},
        "msg91": {"authkey_env": token, "sender": "DAKGHR", "callback_secret_env": "FAKE_CB"},
    }  # fmt: skip
    return {"name": kind, "type": kind, "base_url": base_url, **tables[kind], **extra}
