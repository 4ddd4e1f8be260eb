"""``dakghar serve`` over HTTPS: a real subprocess with a trustme certificate, and its refusals.

The client trusts only the throwaway CA that trustme made for the test, so a passing request
proves the gateway presented the configured chain; a client with the system's trust store must
refuse it. Bad certificate settings stop start-up with one line naming the setting.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from dakghar.api.listener import tls_context
from dakghar.settings import ServerSettings, SettingsError
from tests.e2e.serve_process import run_serve, serve_command, serve_env
from tests.e2e.server import free_port

pytestmark = pytest.mark.timeout(90)


@dataclass
class Certs:
    ca: trustme.CA
    cert: Path
    key: Path
    ca_file: Path

    def client(self) -> ssl.SSLContext:
        """A client context that trusts this CA alone."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_certs(folder: Path, *names: str) -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
    certs = Certs(ca, folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(certs.cert))
    issued.private_key_pem.write_to_path(str(certs.key))
    ca.cert_pem.write_to_path(str(certs.ca_file))
    return certs


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "tls")


def request(
    url: str,
    context: ssl.SSLContext | None,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_healthy(url: str, context: ssl.SSLContext | None, proc: subprocess.Popen[bytes],
                 err: Path) -> None:  # fmt: skip
    """Poll ``url/healthz`` until it answers 200; fail with serve's stderr if it exits."""
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"serve exited: {err.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"serve did not start: {err.read_text()[-2000:]}"
        try:
            if request(f"{url}/healthz", context)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)


@dataclass
class Running:
    url: str
    port: int
    stdout: Path
    stderr: Path


@contextmanager
def serving_https(tmp: Path, certs: Certs, toml: str = "", *args: str,
                  **env: str) -> Iterator[Running]:  # fmt: skip
    """``serve`` with ``args``/``env`` that turn TLS on; waits for /healthz over HTTPS."""
    config = tmp / "dakghar.toml"
    config.write_text(toml)
    port = free_port()
    out, err = tmp / "serve.out", tmp / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(serve_command(config, port, *args), env=serve_env(tmp, **env),
                                stdout=stdout, stderr=stderr)  # fmt: skip
    try:
        url = f"https://127.0.0.1:{port}"
        wait_healthy(url, certs.client(), proc, err)
        yield Running(url, port, out, err)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_serve_answers_healthz_and_sends_a_message_over_https_verified_by_the_ca(
    tmp_path: Path, certs: Certs
) -> None:
    metrics_port = free_port()
    toml = f"[server]\nheader_timeout_seconds = 1.0\n\n[metrics]\nport = {metrics_port}\n"
    env = {"DAKGHAR_TLS_CERT": str(certs.cert), "DAKGHAR_TLS_KEY": str(certs.key),
           "DAKGHAR_LOG_LEVEL": "info", "DAKGHAR_LOG_FORMAT": "json"}  # fmt: skip
    # --no-delivery: the message is accepted and stored; delivery is not what TLS changes.
    with serving_https(tmp_path, certs, toml, "--demo", "--no-delivery", **env) as served:
        context = certs.client()
        status, body = request(f"{served.url}/healthz", context)
        assert status == 200 and json.loads(body)["status"] == "ok"
        key = (tmp_path / "dakghar-demo.key").read_text().strip()
        auth = {"Authorization": f"Bearer {key}"}
        sent = {"to": "+919812345678", "body": "Your order 123 has shipped"}
        status, body = request(f"{served.url}/v1/messages", context, sent, auth)
        assert status == 202, body
        message = json.loads(body)
        assert message["to"] == "+919812345678" and message["status"] == "queued"
        status, body = request(f"{served.url}/v1/messages/{message['id']}", context, None, auth)
        assert status == 200 and json.loads(body)["body"] == sent["body"]

        # The banner and the log name the https:// URL.
        assert f"API:       {served.url}" in served.stdout.read_text()
        assert f'"url": "{served.url}"' in served.stderr.read_text()
        # A client trusting only the system's CAs refuses this chain: the TLS is real.
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            request(f"{served.url}/healthz", ssl.create_default_context())
        # The dedicated metrics listener stays plain HTTP, as Prometheus scrapes it.
        status, body = request(f"http://127.0.0.1:{metrics_port}/metrics", None)
        assert status == 200 and b"dakghar_http_requests_total" in body
        # Plain HTTP on the HTTPS port gets no HTTP answer.
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert not raw.recv(4096).startswith(b"HTTP/")
        # Slow clients are bounded over TLS too ([server] header_timeout_seconds = 1): one that
        # never starts the handshake, and one that completes it and sends no request.
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as idle:
            started = time.monotonic()
            assert idle.recv(1) == b""
            assert time.monotonic() - started < 5
        raw = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as quiet:
            started = time.monotonic()
            assert quiet.recv(1) == b""
            assert 0.5 < time.monotonic() - started < 5


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_missing_certificate_stops_start_up_with_one_line_naming_the_setting(
    tmp_path: Path, certs: Certs
) -> None:
    missing = tmp_path / "no-such-cert.pem"
    done = run_serve(tmp_path, "", "--demo", "--tls-cert", str(missing),
                     "--tls-key", str(certs.key))  # fmt: skip
    assert done.returncode != 0
    assert one_line(done.stderr) == (
        f"dakghar: error: server: tls_cert {missing}: no such file or directory"
    )
    assert "is running" not in done.stdout
    assert not (tmp_path / "dakghar-demo.key").exists()


def test_a_key_that_does_not_match_the_file_s_certificate_is_one_line(
    tmp_path: Path, certs: Certs
) -> None:
    other = make_certs(tmp_path / "other")
    done = run_serve(tmp_path, f'[server]\ntls_cert = "{certs.cert}"\ntls_key = "{other.key}"\n')
    assert done.returncode != 0
    assert one_line(done.stderr) == (
        f"dakghar: error: server: tls_key {other.key} is not the private key of "
        f"tls_cert {certs.cert}"
    )


def test_each_bad_certificate_setting_is_named(tmp_path: Path, certs: Certs) -> None:
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(encrypt(certs.key.read_bytes()))
    cases = {
        (str(certs.key), str(certs.key)): f"server: tls_cert {certs.key}: no PEM certificate in it",
        (
            str(certs.cert),
            str(certs.cert),
        ): f"server: tls_key {certs.cert}: no PEM private key in it",
        (str(certs.cert), str(tmp_path)): f"server: tls_key {tmp_path}: is a directory",
        (str(certs.cert), str(encrypted)): (
            f"server: tls_key {encrypted} is encrypted; give the key without a passphrase"
        ),
        (str(certs.cert), None): "server: tls_cert is set but tls_key is not; HTTPS needs both",
        (None, str(certs.key)): "server: tls_key is set but tls_cert is not; HTTPS needs both",
    }
    for (cert, key), expected in cases.items():
        with pytest.raises(SettingsError) as caught:
            tls_context(ServerSettings(tls_cert=cert, tls_key=key))
        assert str(caught.value) == expected
    context = tls_context(ServerSettings(tls_cert=str(certs.cert), tls_key=str(certs.key)))
    assert context is not None and context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert tls_context(ServerSettings()) is None


def encrypt(key_pem: bytes) -> bytes:
    """The same private key under a passphrase (PKCS#8), which serve must refuse, not prompt."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
