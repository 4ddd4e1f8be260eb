"""settle_heap: start-up's objects frozen, young passes rarer, later cycles still collected.

Run in a child interpreter, so that this test process's own collector is left as it was.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc, weakref
from dakghar.core.heap import YOUNG_THRESHOLD, settle_heap
import dakghar.api.app  # a server's start-up: a large heap that lives until exit
settle_heap()
assert gc.isenabled()
assert gc.get_threshold()[0] == YOUNG_THRESHOLD
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
class Node: pass
a, b = Node(), Node()
a.peer, b.peer = b, a
gone = weakref.ref(a)
del a, b
gc.collect()
assert gone() is None  # a cycle made after start-up is still collected
print("ok")
"""


def test_settle_heap_freezes_start_up_and_still_collects_later_cycles() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
