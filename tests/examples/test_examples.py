"""The programs under ``examples/`` work against a real ``dakghar serve --demo``.

Each example runs as a user would run it (a subprocess with ``DAKGHAR_URL`` and ``DAKGHAR_KEY``),
and its printed output is what is checked: the message id, the final status, and a signature
check of a webhook the gateway really POSTed. Each signature checker is also fed a real webhook
caught by a local receiver, a tampered copy, a stale one and a rotation header, so the examples
agree with ``dakghar.webhooks.signing``. A language whose runtime is absent is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from dakghar.webhooks.signing import sign
from tests.e2e.serve_process import get, serving
from tests.e2e.server import free_port

pytestmark = pytest.mark.timeout(120)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Receipts in milliseconds instead of the demo's 200-800, so each walkthrough takes about a second.
FAST = "[simulator]\nreceipt_delay_ms = [1, 20]\n"


def need(*tools: str) -> None:
    """Skip the test unless every tool is on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (see examples/README.md)")


@dataclass
class Demo:
    url: str
    key: str
    secret: str

    def env(self, **extra: str) -> dict[str, str]:
        """The environment an example runs in: the gateway's URL and key, nothing else of ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAKGHAR_")}
        env.update(DAKGHAR_URL=self.url, DAKGHAR_KEY=self.key, **extra)
        return env

    def status_of(self, message_id: str) -> str:
        status, body, _ = get(f"{self.url}/v1/messages/{message_id}", self.auth)
        assert status == 200, body
        return str(json.loads(body)["status"])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Receiver:
    """A loopback webhook receiver that keeps each POST's signature header and raw body."""

    def __init__(self) -> None:
        got: queue.Queue[tuple[str, bytes]] = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                got.put((self.headers.get("Dakghar-Signature", ""), raw))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.got = got
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def webhook_for(self, message_id: str, timeout: float = 20) -> tuple[str, bytes]:
        """The first webhook about ``message_id`` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            header, raw = self.got.get(timeout=max(0.1, deadline - time.monotonic()))
            if json.loads(raw)["message_id"] == message_id:
                return header, raw


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("examples-serve")
    with serving(tmp, FAST, "--demo") as served:
        key_file = tmp / "dakghar-demo.key"
        deadline = time.monotonic() + 20
        while not key_file.exists():
            assert time.monotonic() < deadline, "serve --demo wrote no demo key"
            time.sleep(0.1)
        key = key_file.read_text().strip()
        auth = {"Authorization": f"Bearer {key}"}
        status, body, _ = get(f"{served.url}/v1/account/webhook-secret", auth)
        assert status == 200, body
        yield Demo(served.url, key, json.loads(body)["webhook_secret"])


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def real_webhook(demo: Demo, receiver: Receiver) -> tuple[str, bytes]:
    """A webhook the gateway POSTed for a delivered message: (Dakghar-Signature, raw body)."""
    request = urllib.request.Request(
        f"{demo.url}/v1/messages",
        data=json.dumps(
            {"to": "+919812345678", "body": "hi", "callback_url": receiver.url}
        ).encode(),
        headers={**demo.auth, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        message_id = json.load(r)["id"]
    return receiver.webhook_for(message_id)


def run(
    args: list[str], env: dict[str, str], stdin: bytes = b"", timeout: float = 60
) -> tuple[int, str]:
    """Run an example from the repository's root; its exit code and stdout (stderr on failure)."""
    done = subprocess.run(
        args, cwd=EXAMPLES.parent, env=env, input=stdin, capture_output=True, timeout=timeout
    )
    return done.returncode, done.stdout.decode() + done.stderr.decode()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def assert_walkthrough(demo: Demo, code: int, out: str) -> None:
    """Its lines: sent, final delivered, the real webhook verified, the tampered body refused."""
    assert code == 0, out
    sent = re.search(r"^sent (msg_\w+) \(queued\)$", out, re.MULTILINE)
    assert sent, out
    assert "\nfinal delivered\n" in out
    assert f"\nwebhook {sent[1]} delivered: signature verified\n" in out
    assert "\ntampered body: signature rejected\n" in out
    assert demo.status_of(sent[1]) == "delivered"


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("go")
    out = tmp_path_factory.mktemp("go") / "dakghar-example"
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}  # stdlib only: no downloads
    if "HOME" not in env:  # go keeps its build cache under HOME, or fails without one
        env.setdefault("GOCACHE", str(out.parent / "cache"))
    done = subprocess.run(["go", "build", "-o", str(out), "."], cwd=EXAMPLES / "go", env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Example.java compiled once: javac takes seconds, so each run after it starts in one."""
    need("javac", "java")
    out = tmp_path_factory.mktemp("java")
    done = subprocess.run(["javac", "-d", str(out), str(EXAMPLES / "java" / "Example.java")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


JAVA_FAST_START = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]  # a short run: start fast


def test_js_example_sends_follows_to_delivered_and_verifies_its_webhook(demo: Demo) -> None:
    need("node")
    assert_walkthrough(demo, *run(["node", "examples/js/example.js"], demo.env()))


def test_go_example_sends_follows_to_delivered_and_verifies_its_webhook(
    demo: Demo, go_binary: Path
) -> None:
    assert_walkthrough(demo, *run([str(go_binary)], demo.env()))


def test_java_example_sends_follows_to_delivered_and_verifies_its_webhook(
    demo: Demo, java_classes: Path
) -> None:
    args = ["java", *JAVA_FAST_START, "-cp", str(java_classes), "Example"]
    assert_walkthrough(demo, *run(args, demo.env()))


def test_curl_example_follows_to_delivered_and_its_webhook_verifies(
    demo: Demo, receiver: Receiver
) -> None:
    need("curl", "openssl", "bash")
    code, out = run(["bash", "examples/curl/send.sh"], demo.env(DAKGHAR_CALLBACK_URL=receiver.url))
    assert code == 0, out
    sent = re.search(r"^sent (msg_\w+) \(queued\)$", out, re.MULTILINE)
    assert sent and out.endswith("final delivered\n"), out
    header, raw = receiver.webhook_for(sent[1])
    env = demo.env(DAKGHAR_WEBHOOK_SECRET=demo.secret)
    assert run(["bash", "examples/curl/verify.sh", header], env, raw) == (0, "signature verified\n")


def test_php_example_follows_to_delivered_and_its_receiver_verifies_the_webhook(
    demo: Demo, tmp_path: Path, real_webhook: tuple[str, bytes]
) -> None:
    need("php")
    port = free_port()
    log = tmp_path / "php-server.log"
    with log.open("wb") as err:
        server = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{port}", "examples/php/receiver.php"],
            cwd=EXAMPLES.parent, env=demo.env(), stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            assert time.monotonic() < deadline and server.poll() is None, log.read_text()
            time.sleep(0.05)
        hook = f"http://127.0.0.1:{port}/hook"
        code, out = run(["php", "examples/php/send.php"], demo.env(DAKGHAR_CALLBACK_URL=hook))
        assert code == 0, out
        sent = re.search(r"^sent (msg_\w+) \(queued\)$", out, re.MULTILINE)
        assert sent and out.endswith("final delivered\n"), out
        line = f"webhook {sent[1]} delivered: signature verified"
        while line not in log.read_text():
            assert time.monotonic() < deadline + 20, log.read_text()
            time.sleep(0.1)
        # A forged webhook (a real header on a changed body) is answered 400, not 2xx.
        header, raw = real_webhook
        forged = urllib.request.Request(
            hook, data=raw.replace(b"delivered", b"failed"), headers={"Dakghar-Signature": header}
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(forged, timeout=10)
        assert answer.value.code == 400
        assert "webhook: signature rejected" in log.read_text()
    finally:
        server.terminate()
        server.wait(10)


VERIFIERS = {
    "js": (["node", "examples/js/verify.js"], ("node",)),
    "php": (["php", "examples/php/signature.php"], ("php",)),
    "curl": (["bash", "examples/curl/verify.sh"], ("bash", "openssl")),
}


def verifier(name: str, request: pytest.FixtureRequest) -> list[str]:
    """The command line of one language's signature checker (its runtime, or a skip)."""
    if name == "go":
        return [str(request.getfixturevalue("go_binary")), "verify"]
    if name == "java":
        return ["java", *JAVA_FAST_START, "-cp", str(request.getfixturevalue("java_classes")),
                "Example", "verify"]  # fmt: skip
    args, tools = VERIFIERS[name]
    need(*tools)
    return args


@pytest.mark.parametrize("name", ["js", "go", "php", "curl", "java"])
def test_signature_check_accepts_a_real_webhook_and_rejects_a_tampered_body(
    name: str, request: pytest.FixtureRequest, demo: Demo, real_webhook: tuple[str, bytes]
) -> None:
    args = verifier(name, request)
    header, raw = real_webhook
    env = demo.env(DAKGHAR_WEBHOOK_SECRET=demo.secret)
    assert run([*args, header], env, raw) == (0, "signature verified\n")
    tampered = raw.replace(b'"delivered"', b'"failed"')
    assert tampered != raw
    assert run([*args, header], env, tampered) == (1, "signature rejected\n")


@pytest.mark.parametrize("name", ["js", "go", "php", "curl"])
def test_signature_check_refuses_stale_and_accepts_rotation_headers_like_the_gateway(
    name: str, request: pytest.FixtureRequest, demo: Demo, real_webhook: tuple[str, bytes]
) -> None:
    args = verifier(name, request)
    _, raw = real_webhook
    env = demo.env(DAKGHAR_WEBHOOK_SECRET=demo.secret)
    now = int(time.time())
    stale = sign(demo.secret, raw, now - 301)
    assert run([*args, stale], env, raw) == (1, "signature rejected\n")
    # During a rotation the new secret signs first; a receiver still on the old one must accept.
    rotated = sign(["whsec_newer", demo.secret], raw, now)
    assert run([*args, rotated], env, raw) == (0, "signature verified\n")
    assert run([*args, "v1=" + rotated.split("v1=")[2]], env, raw)[0] == 1  # no t=


@pytest.mark.parametrize("name", ["js", "go", "php", "curl"])
def test_signature_check_demonstrates_itself_on_a_sample_without_a_webhook(
    name: str, request: pytest.FixtureRequest
) -> None:
    args = verifier(name, request)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKGHAR_")}
    code, out = run(args, env)
    assert code == 0, out
    assert re.match(r"sample header: t=\d+,v1=[0-9a-f]{64}\n", out), out
    assert out.endswith("sample body: signature verified\ntampered body: signature rejected\n")
