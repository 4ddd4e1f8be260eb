"""Object identifiers: a type prefix and a time-ordered random part (``msg_...``, ``acc_...``).

Ids sort by creation time (48-bit millisecond timestamp first), which keeps B-tree inserts local
and makes them usable as a stable paging cursor.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """A new id such as ``msg_0kz3c1x7a4u1m2q9d8w5``: 10 time chars then 12 random chars."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(8), "big")
    return f"{prefix}_{_base36(ms, 10)}{_base36(rand, 12)}"
