"""Wake-up hints from the API process to the dispatcher process.

When the delivery side runs in a process of its own (``dakghar serve``, the default), the API
tells it about newly queued messages over a Unix datagram socket pair made before the child
starts: one datagram per accept, naming each (lane, account, earliest due). A hint only saves
time. The dispatcher still scans the queue for waiting accounts every second, so a hint that is
dropped (a full socket buffer, a dispatcher restarting) delays messages by at most that scan;
it never loses one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Iterable, Sequence

from dakghar.store.base import MessageRow

_ENTRY = struct.Struct("!BqH")  # lane, due (ms), account id length; then the id's bytes
MAX_DATAGRAM = 60_000

Hint = tuple[int, str, int]  # (lane, account, due)


def collect(rows: Iterable[MessageRow], earliest: dict[tuple[int, str], int]) -> None:
    """Note in ``earliest`` the earliest due time of each (lane, account) waiting in ``rows``:
    claimable ones, new (``queued``) or retries (still ``sending``, with no lease)."""
    for r in rows:
        if r.lease_until is not None or r.status not in ("queued", "sending"):
            continue
        due = r.next_attempt_at or r.created_at
        key = (int(r.lane), r.account_id)
        if earliest.get(key, due + 1) > due:
            earliest[key] = due


def encode(rows: Iterable[MessageRow]) -> list[bytes]:
    """Datagrams naming the earliest due time of each (lane, account) among ``rows``."""
    earliest: dict[tuple[int, str], int] = {}
    collect(rows, earliest)
    return pack(earliest)


def pack(earliest: dict[tuple[int, str], int]) -> list[bytes]:
    """Datagrams for (lane, account) -> due entries."""
    out: list[bytes] = []
    chunk = bytearray()
    for (lane, account), due in earliest.items():
        raw = account.encode()
        entry = _ENTRY.pack(lane, due, len(raw)) + raw
        if len(chunk) + len(entry) > MAX_DATAGRAM:
            out.append(bytes(chunk))
            chunk.clear()
        chunk += entry
    if chunk:
        out.append(bytes(chunk))
    return out


def decode(data: bytes) -> list[Hint]:
    """The hints in one datagram; a malformed tail is ignored."""
    hints: list[Hint] = []
    at = 0
    while at + _ENTRY.size <= len(data):
        lane, due, size = _ENTRY.unpack_from(data, at)
        at += _ENTRY.size
        if at + size > len(data):
            break
        hints.append((lane, data[at : at + size].decode(errors="replace"), due))
        at += size
    return hints


class HintSender:
    """The API side: an accept listener that never blocks and never fails an accept.

    Accepts that complete in the same turn of the event loop (one group commit resolves many)
    share one datagram, sent at the end of that turn.
    """

    def __init__(self, sock: socket.socket, address: str) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.address = address
        self.sent = 0
        self.dropped = 0
        self._pending: dict[tuple[int, str], int] = {}

    def __call__(self, rows: Sequence[MessageRow]) -> None:
        first = not self._pending
        collect(rows, self._pending)
        if first and self._pending:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Send what has been collected."""
        pending, self._pending = self._pending, {}
        for datagram in pack(pending):
            try:
                self.sock.sendto(datagram, self.address)
                self.sent += 1
            except OSError:  # full buffer, or no dispatcher listening: its scan finds them
                self.dropped += 1

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def listen(sock: socket.socket, on_hints: Callable[[list[Hint]], None]) -> Callable[[], None]:
    """The dispatcher side: read hints on the running loop; returns a function that stops."""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        for _ in range(256):
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                stop()
                return
            hints = decode(data)
            if hints:
                on_hints(hints)

    def stop() -> None:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(sock.fileno())

    loop.add_reader(sock.fileno(), readable)
    return stop
