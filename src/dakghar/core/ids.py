"""Object identifiers: a type prefix, a time part and a random part (``msg_...``, ``acc_...``).

Ids sort by creation time (48-bit millisecond timestamp first, as fixed-width hex), which keeps
B-tree inserts local and makes them usable as a stable paging cursor; 64 random bits follow.

The random bits come from ``os.urandom`` 4 KiB at a time, kept per thread (and dropped in a
forked child, which would otherwise repeat its parent's). One ``getrandom`` call per id cost
little on its own (~0.5 us), but the call releases the GIL: while the store's writer thread ran,
each id waited to get it back, and ids took a tenth of a 1M-row campaign ingest's main thread.
"""

from __future__ import annotations

import os
import threading
import time

_POOL_BYTES = 4096  # 512 ids per os.urandom call


class _Pool(threading.local):
    hex = ""
    at = 0


_pool = _Pool()


def _forget() -> None:  # in a forked child, which holds only the thread that forked
    _pool.__dict__.clear()


os.register_at_fork(after_in_child=_forget)


def _random_hex16() -> str:
    pool = _pool
    at = pool.at
    if at >= len(pool.hex):
        pool.hex, at = os.urandom(_POOL_BYTES).hex(), 0
    pool.at = at + 16
    return pool.hex[at : at + 16]


def new_id(prefix: str) -> str:
    """A new id such as ``msg_019abc3f2e10a1b2c3d4e5f60718``: 12 time hex then 16 random hex."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{_random_hex16()}"
