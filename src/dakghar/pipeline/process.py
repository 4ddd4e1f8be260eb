"""The delivery side in a process of its own: the gateway on both cores of a two-core box.

CPython runs one thread of Python at a time per process. With the API, the dispatcher, the
connectors, the webhook sender and the store's writer thread in one process, the gateway used
one core of two. ``dakghar serve`` therefore runs, by default (``[server] delivery =
"process"``), two processes over the same store:

- the API process: HTTP, accept, OTP, campaigns, alerts, ``/metrics``;
- the delivery process (``dakghar serve --role dispatcher``, started and watched by the API
  process): dispatcher, connectors, the simulated carrier, webhooks.

How they cooperate, without either assuming it is alone:

- **The store is the only shared state.** Each process has its own group-commit writer;
  SQLite's write lock orders their transactions, and WAL lets readers in meanwhile.
- **One dispatcher per store.** A dispatcher holds an exclusive ``flock`` on
  ``<database>.dispatcher.lock`` while it runs. That lock is what makes its claims its own: a
  dispatcher that gets the lock knows every claim it finds was left by one that has stopped,
  and returns them to the queue at once. A second dispatcher waits for the lock.
- **Wake-ups are hints** (``pipeline.wakeup``), sent to a Unix datagram socket that the lock
  holder binds; the dispatcher also scans the queue every second, so a lost hint costs at most
  that.
- **State flows back through files** in the data directory, written every second: the
  dispatcher's snapshot (``dakghar status``, ``/readyz``, ``GET /v1/connectors``, alerts) and its
  metrics (merged into the API's ``/metrics``).
- **Lifetimes are tied.** The delivery process watches a pipe from its parent and stops when
  the parent goes, ``kill -9`` included; the parent restarts a delivery process that dies, and
  stops it (SIGTERM, then SIGKILL after 20 s) when it stops itself. ``SIGHUP`` is forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec

from dakghar.core.heap import settle_heap
from dakghar.observability.logging import get_logger
from dakghar.settings import STATE_FILE, Settings
from dakghar.store import is_embedded

if TYPE_CHECKING:
    from dakghar.connectors.base import Connector
    from dakghar.observability.metrics import Metrics
    from dakghar.pipeline.accept import Acceptor
    from dakghar.pipeline.view import RemoteDelivery
    from dakghar.pipeline.wakeup import Hint, HintSender
    from dakghar.store.base import Store

log = get_logger("dakghar.process")

METRICS_FILE = "dakghar-delivery.prom"
PARENT_FD_ENV = "DAKGHAR_PARENT_FD"  # the read end of the parent's liveness pipe
# The settings the API process validated and runs with, handed to the delivery process through
# a pipe (they hold the secret key), so both use the same ones even if the file has changed
# since; the config file is read again only on SIGHUP, for the routes.
SETTINGS_FD_ENV = "DAKGHAR_SETTINGS_FD"
LOCK_WAIT_SECONDS = 60.0
STOP_GRACE_SECONDS = 20.0


def store_key(settings: Settings) -> str:
    """What names one store: its database file (or URL), for locks and the wake-up address."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        return str(Path(url[len("sqlite:///") :]).resolve())
    return url


def lock_path(settings: Settings) -> Path:
    """The dispatcher lock of the store of ``settings``."""
    key = store_key(settings)
    if is_embedded(settings.database_url):
        return Path(key + ".dispatcher.lock")
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(settings.data_dir) / f"dakghar-dispatcher-{digest}.lock"


def wake_address(settings: Settings) -> str | None:
    """The dispatcher's hint socket: an abstract Unix address (Linux), None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    digest = hashlib.sha256(store_key(settings).encode()).hexdigest()[:24]
    return f"\0dakghar-wake-{digest}"


def embedded_lock(settings: Settings) -> contextlib.AbstractContextManager[object]:
    """The dispatcher lock on the embedded store; nothing on a fleet's store, where
    dispatchers register and heartbeat in the store instead (any number may run)."""
    embedded = is_embedded(settings.database_url)
    return dispatcher_lock(settings) if embedded else contextlib.nullcontext()


@contextlib.contextmanager
def dispatcher_lock(settings: Settings, wait: float = LOCK_WAIT_SECONDS) -> Iterator[Path]:
    """Hold the store's dispatcher lock, waiting up to ``wait`` seconds for another holder."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"another dispatcher holds {path} (one dispatcher per SQLite store)"
                    ) from None
                if not told:
                    log.info("waiting for the dispatcher holding the lock to stop", lock=str(path))
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # releases the lock


def metrics_path(settings: Settings) -> Path:
    """Where the delivery process writes its metrics for the API process to merge."""
    return Path(settings.data_dir) / METRICS_FILE


def read_peer_metrics(path: Path, stale_after: float = 10.0) -> str | None:
    """The delivery process's metrics text, unless missing or stale."""
    try:
        if time.time() - path.stat().st_mtime > stale_after:
            return None
        return path.read_text()
    except OSError:
        return None


async def write_forever(path: Path, render: Callable[[], bytes], interval: float = 1.0) -> None:
    """Replace ``path`` atomically with ``render()`` every ``interval`` seconds (the state
    snapshot and the metrics file that the API process reads)."""
    tmp = path.with_suffix(".tmp")
    while True:
        with contextlib.suppress(OSError, TypeError):
            tmp.write_bytes(render())
            os.replace(tmp, path)
        await asyncio.sleep(interval)


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # the child died first: the supervisor restarts it
        pass
    finally:
        os.close(fd)


def inherited_settings() -> Settings | None:
    """The settings handed over by the API process that started this one, if any."""
    fd = os.environ.pop(SETTINGS_FD_ENV, None)
    if fd is None:
        return None
    chunks = []
    with os.fdopen(int(fd), "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    return msgspec.json.decode(b"".join(chunks), type=Settings)


# -- the delivery process ---------------------------------------------------------------------


class Closable(Protocol):
    """What the delivery process runs until it is told to stop (``dakghar.gateway.Gateway``)."""

    async def close(self) -> None:
        """Stop everything it started, in reverse."""


def run_dispatcher(settings: Settings, open_parts: Callable[[], Awaitable[Closable]]) -> None:
    """``dakghar serve --role dispatcher``: run what ``open_parts`` opens (the delivery side),
    until SIGTERM/SIGINT or until the parent that started this process goes away."""
    yield_cpu(settings.server.delivery_nice)
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    # Taken before the loop starts: until the lock is ours, nothing here may touch the queue.
    with embedded_lock(settings), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_dispatch(open_parts))


def yield_cpu(nice: int) -> None:
    """Lower this process's CPU priority by ``nice`` (``[server] delivery_nice``), before its
    threads start, so they all inherit it.

    On a shared box the delivery side competes with the API and the database, and the
    scheduler gives every busy process an equal share: a second dispatcher on the API's two
    cores took CPU from the API that both depend on. Niced, dispatchers use what the API leaves,
    so callers are answered first and the queue absorbs the lag. With one dispatcher that lag
    can cost more than it gains, hence 0 by default (README, "Processes", has the figures)."""
    if nice > 0:
        try:
            os.nice(nice)
        except OSError as exc:  # a sandbox may refuse; the gateway runs as before
            log.warning("could not lower the delivery side's CPU priority", error=str(exc))


async def _dispatch(open_parts: Callable[[], Awaitable[Closable]]) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    parent_fd = os.environ.pop(PARENT_FD_ENV, None)
    if parent_fd is not None:
        fd = int(parent_fd)
        os.set_blocking(fd, False)

        def parent_gone() -> None:
            with contextlib.suppress(BlockingIOError):
                if os.read(fd, 64):
                    return
            log.warning("the API process has gone; stopping")
            loop.remove_reader(fd)
            done.set()

        loop.add_reader(fd, parent_gone)
    parts = await open_parts()
    settle_heap()
    try:
        log.info("delivery process started", pid=os.getpid())
        await done.wait()
    finally:
        await parts.close()


def listen_for_hints(
    settings: Settings, merge: Callable[[list[Hint]], None]
) -> Callable[[], Awaitable[None]] | None:
    """Bind the store's hint socket (the dispatcher lock's holder does) and hand what arrives
    to ``merge`` (``Dispatcher.merge``); returns the stop, or None where there is no socket."""
    from dakghar.pipeline.wakeup import listen

    address = wake_address(settings)
    if address is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    try:
        sock.bind(address)
    except OSError:
        # Another dispatcher of a fleet on this host has it: hints are only hints, and this
        # one finds new messages by its scan of the queue (and by Redis, when configured).
        sock.close()
        log.info("wake-up socket taken by another dispatcher on this host; polling")
        return None
    unlisten = listen(sock, merge)

    async def close_hints() -> None:
        unlisten()
        sock.close()

    return close_hints


# -- the API process's side -------------------------------------------------------------------


class DeliveryFailed(Exception):
    """The delivery process could not start; it has already said why on stderr."""

    def __init__(self, returncode: int) -> None:
        super().__init__(f"the delivery process exited with status {returncode} at start-up")
        self.returncode = returncode


class DeliveryProcess:
    """The API process's link to the delivery process: runs, watches and stops it
    (``Gateway.open(..., delivery="process")`` starts it, ``close`` stops it).

    With ``argv`` None (``serve --role api``) it starts nothing and only connects the API to a
    dispatcher run separately on the same store.
    """

    def __init__(self, settings: Settings, argv: Sequence[str] | None) -> None:
        self.settings = settings
        self.argv = list(argv) if argv is not None else None  # the child's command line
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = False
        self._pipe: tuple[int, int] = (-1, -1)
        self._state_path = Path(settings.data_dir) / STATE_FILE
        self._hup_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._hints: HintSender | None = None
        self._acceptor: Acceptor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(
        self,
        store: Store,
        acceptor: Acceptor,
        *,
        connectors: Mapping[str, Connector],
        names: set[str],
        metrics: Metrics | None = None,
    ) -> RemoteDelivery:
        """Start the child; returns the API's view of the delivery side.

        ``connectors`` (built, never started, by the delivery plan) verify provider callbacks;
        ``names`` are every connector's, the simulated carrier's included.
        """
        from dakghar.pipeline.view import RemoteDelivery
        from dakghar.pipeline.wakeup import HintSender

        settings = self.settings
        delivery = RemoteDelivery(store, self._state_path, connectors, names)
        if metrics is not None:
            mpath = metrics_path(settings)
            metrics.peers.append(lambda: read_peer_metrics(mpath))
        self._acceptor = acceptor
        address = wake_address(settings)
        if address is not None:
            self._hints = HintSender(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), address)
            acceptor.listeners.append(self._hints)
        self._loop = asyncio.get_running_loop()
        if self.argv is not None:
            self._pipe = os.pipe()
            await self._spawn()
            await self._started()
            self._supervisor = asyncio.create_task(
                self._supervise(), name="dakghar-delivery-process"
            )
        # SIGHUP (`dakghar reload`, which finds this process's pid file) goes on to the
        # dispatcher, which holds the routes: the one started here, or one started apart.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self._loop.add_signal_handler(signal.SIGHUP, self._forward_hup)
        return delivery

    async def stop(self) -> None:
        """Stop the child (if this process started it) and the hints to it."""
        self._stopping = True
        if self._loop is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.remove_signal_handler(signal.SIGHUP)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            await self._terminate()
        hints = self._hints
        if hints is not None:
            if self._acceptor is not None and hints in self._acceptor.listeners:
                self._acceptor.listeners.remove(hints)
            hints.close()
            self._hints = None
        self._close_pipe()

    async def _spawn(self) -> None:
        assert self.argv is not None
        read_end = self._pipe[0]
        settings_r, settings_w = os.pipe()
        try:
            env = {**os.environ, PARENT_FD_ENV: str(read_end), SETTINGS_FD_ENV: str(settings_r)}
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=env,
                pass_fds=(read_end, settings_r),
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            os.close(settings_r)
        data = msgspec.json.encode(self.settings)
        await asyncio.to_thread(_write_all, settings_w, data)  # a large config exceeds a pipe
        log.info("delivery process starting", pid=self.proc.pid)

    async def _started(self) -> None:
        """Wait for the first delivery process to run (its first snapshot), so that "is
        running" is never said of a gateway that cannot deliver; its failure is serve's."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS + 30
        proc = self.proc
        assert proc is not None
        while True:
            if proc.returncode is not None:
                self._close_pipe()
                raise DeliveryFailed(proc.returncode)
            if self._dispatcher_pid() == proc.pid:
                return
            if time.monotonic() > deadline:
                await self._terminate()
                self._close_pipe()
                raise RuntimeError("the delivery process did not start within its deadline")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.05)

    def _dispatcher_pid(self) -> int | None:
        """The pid in the dispatcher's fresh snapshot: the process that is running it now."""
        from dakghar.pipeline.view import read_snapshot

        snap = read_snapshot(self._state_path)
        pid = snap.get("pid") if snap else None
        return pid if isinstance(pid, int) else None

    def _close_pipe(self) -> None:
        for fd in self._pipe:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._pipe = (-1, -1)

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            assert self.proc is not None
            started = time.monotonic()
            code = await self.proc.wait()
            if self._stopping:
                return
            log.error("delivery process exited; restarting it", exit_status=code,
                      pid=self.proc.pid)  # fmt: skip
            if time.monotonic() - started > 60:
                delay = 1.0
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)
            self.restarts += 1
            await self._spawn()

    async def _terminate(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log.error("delivery process did not stop in time; killing it", pid=proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    def _forward_hup(self) -> None:
        # A child that has not yet installed its own handler would die of SIGHUP's default
        # action: wait until its first snapshot shows it running.
        if self._hup_task is None or self._hup_task.done():
            self._hup_task = asyncio.create_task(self._hup_when_ready())

    async def _hup_when_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self._stopping:
            proc, pid = self.proc, self._dispatcher_pid()
            if proc is None and pid is not None:
                # A dispatcher started apart (--role dispatcher) on this data directory.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGHUP)
                    log.info("reload passed on to the dispatcher", pid=pid)
                return
            if proc is not None and proc.returncode is None and pid == proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGHUP)
                return
            await asyncio.sleep(0.1)
        log.warning("reload not passed on: no running dispatcher for this data directory")
