"""Loopback peers for the SDK tests: a scripted proxy in front of the gateway, and a webhook
receiver. Both are plain ``http.server`` servers on threads, so the blocking and the asyncio
client talk to them the same way.

The proxy stands for the network between an application and the gateway: it can lose an
answer after the gateway acted on the request, drop a connection, or answer 429/503 itself,
and it records every request it saw (with its ``Idempotency-Key``).
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Seen:
    """One request as it reached the proxy, and what the proxy answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class ScriptedProxy:
    """Forwards to ``upstream``; each request first takes the next action of ``script``.

    Actions: ``forward``; ``lost:503`` (forward, then answer 503 as if the answer was lost);
    ``503``; ``429:<seconds>`` (with ``Retry-After``); ``drop`` (close without answering);
    ``problem:<code>`` (a problem+json with that code). Once the script is used up, forward.
    """

    def __init__(self, upstream: str, script: list[str] | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.script = list(script or [])
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def posts(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path.split("?")[0] == path]

    def _next(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "forward"

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple:
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in _HOP}
            conn.request(method, path, body=body or None, headers=out)
            r = conn.getresponse()
            return r.status, [(k, v) for k, v in r.getheaders() if k.lower() not in _HOP], r.read()
        finally:
            conn.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                action = proxy._next()
                seen = Seen(self.command, self.path, headers, body, 0)
                proxy.seen.append(seen)
                if action == "drop":
                    self.close_connection = True
                    return
                status, out, data = 0, [], b""
                if action in ("forward", "lost:503"):
                    status, out, data = proxy._forward(self.command, self.path, headers, body)
                if action != "forward":
                    status, out, data = self._scripted(action)
                seen.answered = status
                self.send_response(status)
                for k, v in out:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _scripted(self, action: str) -> tuple[int, list[tuple[str, str]], bytes]:
                kind, _, arg = action.partition(":")
                status = {"lost": 503, "503": 503, "429": 429, "problem": 418}[kind]
                code = {"problem": arg, "429": "rate_limited"}.get(kind, "unavailable")
                problem = {"type": f"urn:dakghar:error:{code}", "title": code, "status": status,
                           "detail": f"scripted {action}", "code": code}  # fmt: skip
                headers = [("Content-Type", "application/problem+json")]
                if kind == "429":
                    headers.append(("Retry-After", arg))
                return status, headers, json.dumps(problem).encode()

            do_GET = do_POST = do_PATCH = do_DELETE = _any

        return Handler


@contextmanager
def proxy_to(upstream: str, script: list[str] | None = None) -> Iterator[ScriptedProxy]:
    """A :class:`ScriptedProxy` served on a thread for the ``with`` block."""
    proxy = ScriptedProxy(upstream, script)
    thread = threading.Thread(target=proxy.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()


@dataclass
class Delivery:
    """One webhook POST exactly as it arrived."""

    path: str
    headers: dict[str, str]
    raw_body: bytes

    @property
    def json(self) -> dict[str, object]:
        return dict(json.loads(self.raw_body))


class Receiver:
    """A webhook receiver that answers 200 and queues what it got, raw body included."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue[Delivery] = queue.Queue()
        got = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                got.put(Delivery(self.path, dict(self.headers.items()), raw))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def next_for(self, message_id: str, timeout: float = 15) -> Delivery:
        """The next webhook about ``message_id`` (others are skipped)."""
        while True:
            delivery = self.deliveries.get(timeout=timeout)
            if delivery.json.get("message_id") == message_id:
                return delivery


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A :class:`Receiver` served on a thread for the ``with`` block."""
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
