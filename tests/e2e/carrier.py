"""A simulated carrier in its own thread and event loop, playing a live SMSC for e2e tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dakghar.smpp.simulator import Behaviour, Simulator, SimulatorConfig


@contextmanager
def carrier(port: int = 0, **behaviour: Any) -> Iterator[Simulator]:
    """Start a :class:`Simulator` on a loopback port (0: a free one); its address is
    ``sim.address``."""
    behaviour.setdefault("receipt_delay_ms", (5.0, 30.0))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sim = Simulator(SimulatorConfig(port=port, default=Behaviour(**behaviour)))
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(10)
    try:
        yield sim
    finally:
        if sim.address is not None:
            asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def stop_now(sim: Simulator) -> None:
    """Stop a carrier started by :func:`carrier` from the test's thread (it "dies")."""
    asyncio.run_coroutine_threadsafe(sim.stop(), sim.loop).result(10)
