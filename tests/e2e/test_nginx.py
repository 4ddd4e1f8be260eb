"""deploy/nginx/dakghar.conf in front of a live ``dakghar serve``, over HTTPS, with Debian's nginx.

The site file is used as shipped, with only its ports and paths substituted: the upstream
address, the listen ports (free loopback ports), the certificate (trustme's) and the log paths.
nginx runs as a plain foreground process of this test, not as a service; the test skips with a
reason when nginx is not installed (``.ci/install-peers`` installs it).
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dakghar.settings import ApiSettings
from tests.e2e.serve_process import serving
from tests.e2e.server import free_port
from tests.e2e.test_tls import Certs, make_certs, request

pytestmark = pytest.mark.timeout(90)

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "dakghar.conf"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
)


def site_for(upstream: int, https: int, http: int, certs: Certs, logs: Path) -> str:
    """The shipped site file with its ports and paths replaced, and nothing else."""
    text = SITE.read_text()
    swaps = {
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "/etc/letsencrypt/live/sms.example.com/fullchain.pem": str(certs.cert),
        "/etc/letsencrypt/live/sms.example.com/privkey.pem": str(certs.key),
        "/var/log/nginx/dakghar.access.log": str(logs / "access.log"),
    }
    for old, new in swaps.items():
        assert old in text, f"{SITE} no longer has {old!r}; update the test's substitutions"
        text = text.replace(old, new)
    return text


def main_conf(prefix: Path, site: Path) -> str:
    """nginx's own top level, as Debian's /etc/nginx/nginx.conf provides it, for one process."""
    return (
        f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  client_body_temp_path {prefix}/body;\n  proxy_temp_path {prefix}/proxy;\n"
        f"  fastcgi_temp_path {prefix}/fastcgi;\n  uwsgi_temp_path {prefix}/uwsgi;\n"
        f"  scgi_temp_path {prefix}/scgi;\n  include {site};\n}}\n"
    )


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        assert proc.poll() is None, f"nginx exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "nginx did not listen in time"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)


@pytest.fixture(scope="module")
def nginx_in_front(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str, Certs, Path, str]]:
    """A live gateway (plain HTTP on loopback) behind nginx.

    Yields the HTTPS and HTTP URLs of nginx, the certificates, nginx's folder and the demo key.
    """
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/install-peers)")
    tmp_path = tmp_path_factory.mktemp("nginx-in-front")
    certs = make_certs(tmp_path / "tls")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    with serving(tmp_path, "", "--demo", "--no-delivery") as gateway:
        https, http = free_port(), free_port()
        site = prefix / "dakghar.conf"
        site.write_text(site_for(gateway.port, https, http, certs, prefix))
        conf = prefix / "nginx.conf"
        conf.write_text(main_conf(prefix, site))
        args = [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
        checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        with (prefix / "stderr").open("wb") as err:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_port(https, proc, prefix / "error.log")
            key = (tmp_path / "dakghar-demo.key").read_text().strip()
            yield f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}", certs, prefix, key
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_message_is_sent_through_nginx_over_https(
    nginx_in_front: tuple[str, str, Certs, Path, str],
) -> None:
    url, plain, certs, prefix, key = nginx_in_front
    context = certs.client()
    status, body = request(f"{url}/healthz", context)
    assert status == 200 and json.loads(body)["status"] == "ok"
    auth = {"Authorization": f"Bearer {key}"}
    sent = {"to": "098123 45678", "body": "Your order 123 has shipped"}
    status, body = request(f"{url}/v1/messages", context, sent, auth)
    assert status == 202, body
    message = json.loads(body)
    assert message["to"] == "+919812345678"
    status, body = request(f"{url}/v1/messages/{message['id']}", context, None, auth)
    assert status == 200 and json.loads(body)["id"] == message["id"]
    # Several requests reuse kept-alive upstream connections; each answer still comes back.
    for _ in range(5):
        assert request(f"{url}/v1/account", context, None, auth)[0] == 200
    # Plain HTTP is redirected to HTTPS, and /metrics is not published through the proxy.
    redirect = http.client.HTTPConnection(*plain.removeprefix("http://").split(":"), timeout=10)
    redirect.request("GET", "/healthz", headers={"Host": "sms.example.com"})
    answer = redirect.getresponse()
    assert (answer.status, answer.getheader("Location")) == (
        301,
        "https://sms.example.com/healthz",
    )
    redirect.close()
    assert request(f"{url}/metrics", context)[0] == 404
    # The access log has the path but not the query string (phone numbers) or the key.
    request(f"{url}/v1/messages?to=%2B919812345678", context, None, auth)
    log = access_line(prefix / "access.log", "GET /v1/messages HTTP/")
    assert "919812345678" not in log and key not in log


def access_line(path: Path, wanted: str) -> str:
    """The access log once it has ``wanted``: nginx writes a line after the response is sent."""
    deadline = time.monotonic() + 5
    while wanted not in (text := path.read_text()):
        assert time.monotonic() < deadline, f"{wanted!r} not logged: {text[-1000:]}"
        time.sleep(0.05)
    return text


def test_nginx_refuses_a_body_over_the_gateway_limit_itself(
    nginx_in_front: tuple[str, str, Certs, Path, str],
) -> None:
    url, _, certs, _, key = nginx_in_front
    limit = re.search(r"client_max_body_size (\d+)m;", SITE.read_text())
    assert limit is not None
    assert int(limit[1]) * 1024 * 1024 == ApiSettings().max_body_bytes
    auth = {"Authorization": f"Bearer {key}"}
    oversized = {"to": "+919812345678", "body": "x" * (ApiSettings().max_body_bytes + 1)}
    status, body = request(f"{url}/v1/messages", certs.client(), oversized, auth)
    assert status == 413
    assert b"nginx" in body  # refused by the proxy, before the gateway had to read it
