"""Key files appear whole (``core.files``): never created empty and written afterwards.

A script that waits for ``dakghar-demo.key`` to exist, or a second process that finds
``dakghar.secret`` already there, read it at once. A file opened under its own name with
``O_CREAT`` exists, empty, before its content is written (CI once read the demo key empty and
got a 401). The audit hook sees every ``open`` Python makes, so these tests know, without
timing, whether the final name was ever created for writing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dakghar.core.files import write_private
from dakghar.settings import Settings, ensure_secret_key

_WATCH: dict[str, list[str]] = {}
_LOCK = threading.Lock()


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not _WATCH:
        return
    path, mode, flags = args
    if not isinstance(path, str | os.PathLike):
        return  # a file descriptor (os.fdopen)
    writes = (isinstance(mode, str) and any(m in mode for m in "wax+")) or (
        isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
    )
    if writes:
        with _LOCK:
            for name, seen in _WATCH.items():
                if os.fspath(path) == name:
                    seen.append(f"{mode!r} {flags!r}")


sys.addaudithook(_hook)


@pytest.fixture
def watch() -> Iterator[dict[str, list[str]]]:
    try:
        yield _WATCH
    finally:
        _WATCH.clear()


def test_the_secret_key_file_is_never_created_for_writing_under_its_name(
    tmp_path: Path, watch: dict[str, list[str]]
) -> None:
    target = tmp_path / "dakghar.secret"
    watch[str(target)] = []
    settings = ensure_secret_key(Settings(data_dir=str(tmp_path)))
    assert len(settings.secret_key) > 40
    assert target.read_text() == settings.secret_key
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert watch[str(target)] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dakghar.secret"]  # no temp left


def test_the_demo_key_file_is_never_created_for_writing_under_its_name(
    tmp_path: Path, watch: dict[str, list[str]]
) -> None:
    from dakghar.cli.serve import DEMO_KEY_FILE, ensure_demo
    from dakghar.store.sqlite import SqliteStore

    target = tmp_path / DEMO_KEY_FILE
    watch[str(target)] = []
    settings = ensure_secret_key(Settings(data_dir=str(tmp_path)))

    async def run() -> tuple[str, str]:
        store = SqliteStore(f"sqlite:///{tmp_path}/d.db")
        await store.open()
        try:
            svc: Any = SimpleNamespace(store=store, settings=settings)  # what it reads
            first = await ensure_demo(svc)
            target.write_text("test_not_a_key_we_made\n")  # a key file that no longer works
            return first, await ensure_demo(svc)
        finally:
            await store.close()

    first, second = asyncio.run(run())
    assert first.startswith("test_") and second.startswith("test_") and second != first
    assert target.read_text() == second + "\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    # Only this test's own write_text above opened the final name for writing.
    assert len(watch[str(target)]) == 1


def test_an_exclusive_write_keeps_what_another_writer_put_there_first(tmp_path: Path) -> None:
    target = tmp_path / "k"
    assert write_private(target, b"first", exclusive=True)
    assert not write_private(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert write_private(target, b"third")
    assert target.read_bytes() == b"third"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]
