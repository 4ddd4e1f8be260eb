"""Object identifiers: a type prefix, a time part and a random part (``msg_...``, ``acc_...``).

Ids sort by creation time (48-bit millisecond timestamp first, as fixed-width hex), which keeps
B-tree inserts local and makes them usable as a stable paging cursor; 64 random bits follow.
"""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """A new id such as ``msg_019abc3f2e10a1b2c3d4e5f60718``: 12 time hex then 16 random hex."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{os.urandom(8).hex()}"
