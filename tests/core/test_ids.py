"""Ids: time-ordered, 64 random bits each, never repeated across threads or a fork."""

from __future__ import annotations

import os
import re
import threading

from dakghar.core.ids import new_id

ID = re.compile(r"msg_[0-9a-f]{12}[0-9a-f]{16}")


def test_ids_have_the_documented_shape_and_do_not_repeat() -> None:
    ids = [new_id("msg") for _ in range(5000)]  # across several 4 KiB refills
    assert all(ID.fullmatch(i) for i in ids)
    assert len({i[-16:] for i in ids}) == len(ids)
    assert ids == sorted(ids, key=lambda i: i[4:16])  # the time part never goes back


def test_threads_draw_different_random_bits() -> None:
    found: list[list[str]] = [[], []]

    def draw(out: list[str]) -> None:
        out.extend(new_id("msg")[-16:] for _ in range(600))

    threads = [threading.Thread(target=draw, args=(out,)) for out in found]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(found[0]) & set(found[1])


def test_a_forked_child_does_not_repeat_its_parents_next_ids() -> None:
    new_id("msg")  # the pool is filled, with ids left in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, "".join(new_id("msg")[-16:] for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = "".join(new_id("msg")[-16:] for _ in range(8))
    assert len(child) == len(parent) == 128
    assert child != parent
