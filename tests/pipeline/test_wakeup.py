"""Wake-up hints between processes: what is sent, and that a real socket carries it."""

from __future__ import annotations

import asyncio
import socket

from dakghar.pipeline.wakeup import HintSender, decode, encode, listen
from dakghar.store.base import MessageRow


def row(account: str, lane: int, due: int, status: str = "queued") -> MessageRow:
    fields = dict.fromkeys(MessageRow.__dataclass_fields__)
    fields.update(
        id=f"msg_{account}_{due}", account_id=account, lane=lane, status=status,
        next_attempt_at=due, created_at=due, lease_until=None,
    )  # fmt: skip
    return MessageRow(**fields)  # type: ignore[arg-type]


def test_hints_name_each_lane_and_account_once_with_its_earliest_due_time() -> None:
    rows = [row("acc_a", 1, 500), row("acc_a", 1, 300), row("acc_b", 0, 900),
            row("acc_c", 2, 100, status="scheduled")]  # fmt: skip
    hints = sorted(h for d in encode(rows) for h in decode(d))
    assert hints == [(0, "acc_b", 900), (1, "acc_a", 300)]


def test_many_accounts_are_split_into_datagrams_that_fit() -> None:
    rows = [row(f"acc_{i:06d}" + "x" * 20, 1, i) for i in range(5000)]
    datagrams = encode(rows)
    assert len(datagrams) > 1 and all(len(d) <= 60_000 for d in datagrams)
    assert sum(len(decode(d)) for d in datagrams) == 5000


def test_a_truncated_datagram_yields_the_complete_entries_only() -> None:
    (data,) = encode([row("acc_a", 1, 5), row("acc_b", 1, 6)])
    assert decode(data[:-2]) == [(1, "acc_a", 5)]


async def test_hints_from_one_turn_of_the_loop_travel_in_one_datagram() -> None:
    address = f"\0dakghar-test-wake-{id(object())}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    got: list[list[tuple[int, str, int]]] = []
    arrived = asyncio.Event()

    def on_hints(hints: list[tuple[int, str, int]]) -> None:
        got.append(hints)
        arrived.set()

    stop = listen(receiver, on_hints)
    sender = HintSender(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), address)
    try:
        for i in range(10):
            sender([row("acc_a", 1, 100 + i)])
        sender([row("acc_b", 0, 50)])
        await asyncio.wait_for(arrived.wait(), 2)
        await asyncio.sleep(0.05)
        assert sender.sent == 1 and got == [[(1, "acc_a", 100), (0, "acc_b", 50)]]
    finally:
        stop()
        sender.close()
        receiver.close()


async def test_a_hint_with_nobody_listening_is_dropped_quietly() -> None:
    sender = HintSender(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), "\0dakghar-nobody")
    sender([row("acc_a", 1, 1)])
    await asyncio.sleep(0.01)
    assert sender.dropped == 1
    sender.close()
