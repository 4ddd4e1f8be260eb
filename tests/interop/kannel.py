"""A throwaway Kannel (bearerbox + smsbox) bound to an SMSC under test; used by tests/interop.

``Kannel`` writes a config into a directory of its own, starts ``bearerbox`` then ``smsbox`` on
free loopback ports, waits until the SMPP link to our SMSC is online, sends through Kannel's
sendsms HTTP interface, and stops both processes (SIGTERM, then SIGKILL). It blocks by design:
async tests call it through ``asyncio.to_thread`` so the SMSC in their event loop keeps serving.
Every failure carries the tail of Kannel's own logs, which is where the reason usually is.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

# Debian installs the boxes in /usr/sbin, which is not on an unprivileged user's PATH.
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
SMSC_ID = "dakghar-sim"


def find_box(name: str) -> str | None:
    """The path of a Kannel executable (``bearerbox``, ``smsbox``), or None if not installed."""
    return shutil.which(name) or shutil.which(name, path=":".join(_SBIN_DIRS))


def free_port() -> int:
    """A loopback TCP port nobody listens on now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class KannelError(RuntimeError):
    """Kannel did not start, bind or answer as expected; the message ends with its log tails."""


@dataclass(frozen=True, slots=True)
class SmscLink:
    """Where and how Kannel binds: the SMSC's address and the ESME credentials.

    ``msg_id_type`` is Kannel's bit mask for message ids (bit 0: submit_sm_resp, bit 1:
    deliver_sm; set means hexadecimal). Both set makes Kannel convert the id in submit_sm_resp
    and the one in the receipt the same way, so receipts match their messages.
    """

    host: str
    port: int
    system_id: str
    password: str
    msg_id_type: int = 0x03


class Kannel:
    """bearerbox + smsbox with one SMPP transceiver link to ``link`` and one sendsms user.

    Ports are picked free at construction; ``log_level`` is Kannel's (0 debug with PDU dumps,
    1 info) for the ``bearerbox.log`` and ``smsbox.log`` files in ``workdir``.
    """

    username = "tester"
    password = "sendsms-secret"
    admin_password = "admin-secret"
    sender = "DAKGHR"  # smsbox's global-sender, so sendsms calls need no ``from``

    def __init__(self, link: SmscLink, workdir: Path, *, log_level: int = 1) -> None:
        self.link = link
        self.workdir = workdir
        self.log_level = log_level
        self.admin_port = free_port()
        self.smsbox_port = free_port()
        self.sendsms_port = free_port()
        self.config_path = workdir / "kannel.conf"
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- configuration ----------------------------------------------------------------------

    def config_text(self) -> str:
        """The kannel.conf for this instance: core, one SMPP smsc, smsbox and a sendsms user."""
        link = self.link
        return f"""\
group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = {self.admin_password}
admin-allow-ip = "127.0.0.1"
smsbox-port = {self.smsbox_port}
box-allow-ip = "127.0.0.1"
access-log = "{self.workdir / "access.log"}"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = {SMSC_ID}
host = {link.host}
port = {link.port}
transceiver-mode = true
smsc-username = "{link.system_id}"
smsc-password = "{link.password}"
system-type = ""
interface-version = 34
msg-id-type = {link.msg_id_type:#04x}
enquire-link-interval = 30
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
global-sender = {self.sender}

group = sendsms-user
username = {self.username}
password = {self.password}
concatenation = true
max-messages = 10
"""

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Start bearerbox, then smsbox; return once the SMPP link and sendsms are up."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        deadline = time.monotonic() + timeout
        try:
            self._spawn("bearerbox")
            self._wait(lambda: port_open(self.admin_port), deadline, "bearerbox's admin port")
            self._spawn("smsbox")
            self._wait(lambda: port_open(self.sendsms_port), deadline, "smsbox's sendsms port")
            self._wait(self.online, deadline, "the SMPP link to come online and smsbox to connect")
        except BaseException:
            self.stop()  # a failed start must not leave boxes running
            raise

    def _spawn(self, box: str) -> None:
        path = find_box(box)
        if path is None:
            raise KannelError(f"{box} is not installed (run .ci/install-peers)")
        # Each box logs to stdout at ``-v log_level``; one file per box also keeps the config
        # errors printed before a log file could be opened.
        with (self.workdir / f"{box}.log").open("wb") as out:
            self._processes[box] = subprocess.Popen(
                [path, "-v", str(self.log_level), str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        """Poll ``ready`` until it holds; ``KannelError`` with logs on deadline or a dead box."""
        while not ready():
            for box, process in self._processes.items():
                if process.poll() is not None:
                    raise self.error(f"{box} exited with {process.returncode} waiting for {what}")
            if time.monotonic() > deadline:
                raise self.error(f"timed out waiting for {what}")
            time.sleep(0.1)

    def pids(self) -> dict[str, int]:
        """The process id of each running box."""
        return {box: process.pid for box, process in self._processes.items()}

    def online(self) -> bool:
        """True when bearerbox reports our SMSC link online and an smsbox connected."""
        try:
            status = self.status()
        except (OSError, urllib.error.URLError):
            return False
        smsc = [line for line in status.splitlines() if SMSC_ID in line]
        return any("(online" in line for line in smsc) and "smsbox:" in status

    def status(self) -> str:
        """bearerbox's plain-text status page (links, queues, counters)."""
        query = urllib.parse.urlencode({"password": self.admin_password})
        url = f"http://127.0.0.1:{self.admin_port}/status.txt?{query}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
        return body.decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM smsbox then bearerbox (the order Kannel shuts down in), SIGKILL stragglers."""
        for box in ("smsbox", "bearerbox"):
            process = self._processes.pop(box, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)

    def __enter__(self) -> Kannel:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- use --------------------------------------------------------------------------------

    def sendsms(self, to: str, text: str, **params: str | int) -> str:
        """Submit through smsbox's /cgi-bin/sendsms; returns Kannel's answer if it accepted."""
        query = urllib.parse.urlencode(
            {
                "username": self.username,
                "password": self.password,
                "smsc": SMSC_ID,
                "to": to,
                "text": text,
                **params,
            }
        )
        url = f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms?{query}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body: bytes = response.read()
        except urllib.error.HTTPError as refused:
            answer = refused.read().decode("utf-8", "replace")
            raise self.error(f"sendsms refused with {refused.code}: {answer}") from refused
        return body.decode("utf-8", "replace")

    # --- diagnostics ------------------------------------------------------------------------

    def log_tail(self, lines: int = 25) -> str:
        """The last ``lines`` lines of each Kannel log, for failure messages."""
        parts = []
        for name in ("bearerbox.log", "smsbox.log"):
            path = self.workdir / name
            if path.exists():
                tail = path.read_text("utf-8", "replace").splitlines()[-lines:]
                parts.append(f"--- {name} ---\n" + "\n".join(tail))
        return "\n".join(parts) or "(no Kannel logs)"

    def error(self, message: str) -> KannelError:
        """A ``KannelError`` whose message ends with the log tails."""
        return KannelError(f"{message}\n{self.log_tail()}")
