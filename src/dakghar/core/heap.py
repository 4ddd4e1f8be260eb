"""The cycle collector, set for a long-running server process (``settle_heap``).

CPython's collector runs a young-generation pass every 700 net container allocations, and a
full pass, which walks every tracked object, once enough has survived. A gateway's heap after
start-up is large (phonenumbers' metadata, prepared SQL, Starlette, uvicorn, prometheus) and
lives until the process exits, so the full passes mostly walked the same objects again. On
single POSTs at c=50 the collector took 0.4-0.8 s per 40,000 requests, 10-19 us of a
request's ~190 us of the API's CPU (``gc.callbacks``, 2026-12-03).

Once a process is serving, ``settle_heap`` collects what start-up left over, moves everything
still alive into the permanent generation that no pass walks (``gc.freeze``), and raises the
young threshold from 700 to 10,000 allocations: a request's short-lived cycles are still
collected, a few hundred times less often. What start-up built and later drops (a config
reload's old routes) is freed by reference counting as usual; only a cycle among such
objects would stay, a few objects per reload.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Freeze what start-up built and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
