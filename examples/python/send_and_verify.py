"""Send an SMS with the Python SDK, follow it to its final status, and verify its webhook.

A whole, small application: it starts a webhook receiver (stdlib ``http.server``) on
loopback, sends one message whose ``callback_url`` points at it, polls the message until its
status is final, and waits for the gateway's webhook, which it accepts only once
``dakghar_client.webhooks.verify`` has checked its ``Dakghar-Signature``.

Run it against ``make run`` (whose ``--demo`` lets the gateway call a receiver on
127.0.0.1), from the folder where ``make run`` runs, like the other examples
(``examples/README.md``: ``DAKGHAR_URL``, ``DAKGHAR_KEY``, ``DAKGHAR_TO``)::

    export DAKGHAR_KEY=$(cat dakghar-demo.key)    # or leave it: ./dakghar-demo.key is read
    .venv/bin/python examples/python/send_and_verify.py

It exits 0 when the message reached a final status and its webhook verified.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dakghar_client import ApiError, Client, SignatureError, webhooks


def receiver(secret: str, events: queue.Queue[tuple[str, bytes]]) -> ThreadingHTTPServer:
    """A webhook receiver on a free loopback port: 200 for a genuine webhook, 400 otherwise."""

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # the program prints what matters itself

        def do_POST(self) -> None:
            raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            header = self.headers.get("Dakghar-Signature") or ""
            try:
                # the raw bytes, before any JSON parsing: that is what was signed
                webhooks.verify(secret, header, raw_body)
            except SignatureError as e:
                print(f"webhook refused: {e}", flush=True)
                self.send_response(400)
            else:
                events.put((header, raw_body))
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def tampered_is_rejected(secret: str, header: str, raw_body: bytes) -> bool:
    """Show that a changed body fails the check the genuine one passed."""
    try:
        webhooks.verify(secret, header, raw_body.replace(b"}", b',"status":"failed"}', 1))
    except SignatureError:
        print("tampered body: signature rejected", flush=True)
        return True
    print("tampered body: signature accepted (it should not be)", flush=True)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("DAKGHAR_URL", "http://127.0.0.1:8080")
    )
    parser.add_argument("--key-file", default="dakghar-demo.key",
                        help="file holding the API key when DAKGHAR_KEY is not set")  # fmt: skip
    parser.add_argument("--to", default=os.environ.get("DAKGHAR_TO", "+919812345678"))
    parser.add_argument("--body", default="Your order 123 has shipped")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait in all")
    args = parser.parse_args(argv)
    key = os.environ.get("DAKGHAR_KEY") or Path(args.key_file).read_text().strip()
    deadline = time.monotonic() + args.timeout

    with Client(key, base_url=args.base_url) as client:
        secret = client.account.webhook_secret().webhook_secret
        events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        server = receiver(secret, events)
        hook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        try:
            message = client.messages.send(to=args.to, body=args.body, callback_url=hook_url)
        except ApiError as e:
            print(f"not sent: {e.code}: {e.detail}")
            return 1
        print(f"sent {message.id} ({message.status})", flush=True)

        status = message.status
        while not message.is_final and time.monotonic() < deadline:
            time.sleep(0.2)
            message = client.messages.get(message.id)
            if message.status != status:
                status = message.status
                print(f"status {status}", flush=True)
        if not message.is_final:
            print("no final status in time")
            return 1
        print(f"final {message.status} {message.error_code or ''}".rstrip(), flush=True)

        while time.monotonic() < deadline:
            try:
                header, raw_body = events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            event: dict[str, Any] = json.loads(raw_body)
            if event.get("message_id") != message.id:
                continue
            print(f"webhook {message.id} {event['status']}: signature verified", flush=True)
            server.shutdown()
            return 0 if tampered_is_rejected(secret, header, raw_body) else 1
        server.shutdown()
        print("no verified webhook in time")
        return 1


if __name__ == "__main__":
    sys.exit(main())
