"""Back up a real, sending ``dakghar serve``; restore the copy into a fresh data directory and
check that a second gateway on it has every message the backup counted, and that the old API
keys work there (with the secret restored beside the database)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner, Result

from dakghar.cli.main import cli
from dakghar.core.message import FINAL_STATUSES
from tests.e2e.serve_process import get, serving

FINAL = {s.value for s in FINAL_STATUSES}


def dakghar(data: Path, *args: str) -> Result:
    """The CLI on the data directory ``data``, whose secret is a key file there (as ``serving``
    runs it). In this process: a fresh interpreter costs seconds on a busy box, and the gateway
    it works beside is a separate process all the same."""
    env: dict[str, str | None] = {
        "DAKGHAR_DATA_DIR": str(data),
        "DAKGHAR_DATABASE_URL": f"sqlite:///{data}/serve.db",
        "DAKGHAR_SECRET_KEY": None,
        "DAKGHAR_CONFIG": None,
    }
    return CliRunner(env=env).invoke(cli, list(args), obj={})


def post(url: str, key: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{url}/v1/messages",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def all_messages(url: str, key: str) -> dict[str, str]:
    """Every message of the key's account: id -> status (through the paged list)."""
    out: dict[str, str] = {}
    cursor = ""
    headers = {"Authorization": f"Bearer {key}"}
    while True:
        status, body, _ = get(f"{url}/v1/messages?limit=1000{cursor}", headers)
        assert status == 200, body
        page = json.loads(body)
        out.update({m["id"]: m["status"] for m in page["data"]})
        if not page["next_cursor"]:
            return out
        cursor = f"&cursor={page['next_cursor']}"


def later(status: str, than: str) -> bool:
    """``status`` comes after ``than`` in the lifecycle (API.md: never backwards)."""
    order = ["scheduled", "queued", "sending", "sent"]
    return status in FINAL or order.index(status) > order.index(than)


def delivered(url: str, key: str, message_id: str) -> bool:
    status, body, _ = get(f"{url}/v1/messages/{message_id}", {"Authorization": f"Bearer {key}"})
    return status == 200 and json.loads(body)["status"] == "delivered"


def test_a_backup_of_a_sending_gateway_restores_into_a_working_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    made = dakghar(one, "accounts", "create", "acme", "--balance", "100000", "--sender", "ACME")
    account = made.output.splitlines()[0]
    key = dakghar(one, "keys", "create", account, "--sandbox").output.strip()
    assert key.startswith("test_"), made.output
    backup = tmp_path / "backups" / "one.db"
    accepted: list[tuple[float, str]] = []
    stop = threading.Event()
    refusals: list[dict[str, object]] = []

    def send(url: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            to = "+917000000001" if n % 10 == 0 else "+919812345678"  # some fail
            status, body = post(url, key, {"to": to, "body": f"message {n}"})
            if status != 202:
                refusals.append(body)
                return
            accepted.append((time.monotonic(), str(body["id"])))
            time.sleep(0.01)  # a steady stream, not a saturating one

    with serving(one, "", DAKGHAR_SECRET_KEY="") as served:
        senders = [threading.Thread(target=send, args=(served.url,)) for _ in range(4)]
        for t in senders:
            t.start()
        deadline = time.monotonic() + 60

        def wait() -> None:
            assert not refusals and time.monotonic() < deadline, refusals[:1] or "too slow"
            time.sleep(0.05)

        try:
            while len(accepted) < 150 or not delivered(served.url, key, accepted[0][1]):
                wait()
            started, n_backup = time.monotonic(), len(accepted)
            done = dakghar(one, "backup", str(backup), "--with-secret")
            assert done.exit_code == 0, done.output
            while len(accepted) < n_backup + 150:  # and still sending after the backup
                wait()
        finally:
            stop.set()
            for t in senders:
                t.join()
        refused = dakghar(one, "restore", str(backup), "--yes")
        assert refused.exit_code == 1 and "stop it first" in refused.output
    counted = re.search(r"(\d+) messages, (\d+) accounts", done.output)
    assert counted is not None, done.output
    assert "secret: copied from" in done.output and (tmp_path / "backups/one.db.secret").exists()
    with sqlite3.connect(backup) as conn:
        in_backup = dict(conn.execute("SELECT id, status FROM messages").fetchall())
    assert len(in_backup) == int(counted[1]) and int(counted[2]) == 1
    before = {mid for at, mid in accepted if at < started}  # answered 202 before the backup
    assert before <= set(in_backup)
    assert set(in_backup) < {mid for _, mid in accepted}  # a snapshot: the later ones are not
    assert any(s in FINAL for s in in_backup.values())  # it was delivering while copied

    restored = dakghar(two, "restore", str(backup), "--yes", "--with-secret")
    assert restored.exit_code == 0, restored.output
    assert f"{len(in_backup)} messages, 1 accounts" in restored.output
    with serving(two, "", DAKGHAR_SECRET_KEY="") as served:
        after = all_messages(served.url, key)  # the old key, verified with the restored secret
        assert set(after) == set(in_backup)
        for mid, status in in_backup.items():
            # Final stays final; what was on its way goes on, forward only.
            assert after[mid] == status or (status not in FINAL and later(after[mid], status))
        status, body = post(served.url, key, {"to": "+919812345678", "body": "after restore"})
        assert status == 202, body
        deadline = time.monotonic() + 20
        while all_messages(served.url, key)[str(body["id"])] != "delivered":
            assert time.monotonic() < deadline, "the new message was not delivered"
            time.sleep(0.2)
