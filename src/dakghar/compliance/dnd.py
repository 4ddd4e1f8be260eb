"""The national do-not-disturb list (TRAI NCPR) as a compact sorted file, checked by bisection.

The list holds tens of millions of numbers, each with preference categories: ``0`` is fully
blocked, ``1``-``8`` are categories of promotions the subscriber still accepts. Each entry is one
unsigned 64-bit key ``digits << 8 | mask`` (the E.164 digits as an integer, the accepted
categories as a bit mask), and the file is the sorted array of keys after a 16-byte header:
8 bytes per number on disk, nothing in memory but the page cache (the file is ``mmap``-ed), and a
lookup is a ~24-step binary search over the mapping, a few microseconds.

The import never holds the list in Python objects: it sorts runs of two million keys into
temporary files and merges them, so memory stays flat however long the list is.
"""

from __future__ import annotations

import bisect
import heapq
import mmap
import os
import re
import struct
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"DKDND1\0\0"
_HEADER = struct.Struct("<8sQ")
RUN_SIZE = 2_000_000
FILE_NAME = "dnd.bin"
_NOT_DIGITS = re.compile(r"[^0-9]")

# TRAI TCCCPR 2018 preference categories; a promotional template's category names one of them.
CATEGORIES: dict[str, int] = {
    "banking": 1,
    "real_estate": 2,
    "education": 3,
    "health": 4,
    "consumer_goods": 5,
    "communication": 6,
    "tourism": 7,
    "food": 8,
}


def category_number(category: str | None) -> int | None:
    """The preference category (1-8) of a template category name or number, else None."""
    if category is None:
        return None
    text = category.strip().lower().replace(" ", "_").replace("-", "_")
    if text.isdigit() and 1 <= int(text) <= 8:
        return int(text)
    return CATEGORIES.get(text)


def preference_mask(field: str) -> int:
    """The bit mask of accepted categories in a preferences field ("0", "1|3", "1,3", "13")."""
    mask = 0
    for ch in field:
        if "1" <= ch <= "8":
            mask |= 1 << (int(ch) - 1)
    return mask


def number_digits(raw: str) -> int | None:
    """The E.164 digits of a registry number as an integer (10-digit numbers are Indian)."""
    digits = raw[1:] if raw[:1] == "+" and raw[1:].isdigit() else _NOT_DIGITS.sub("", raw)
    if len(digits) == 11 and digits[0] == "0":
        digits = digits[1:]
    if len(digits) == 10:
        digits = "91" + digits
    if not 8 <= len(digits) <= 15:
        return None
    return int(digits)


@dataclass(slots=True)
class ImportResult:
    """What an import did."""

    numbers: int
    skipped: int
    bytes: int
    path: Path


def _runs(
    source: Path, tmp: Path, on_progress: Callable[[int], None] | None
) -> tuple[list[Path], int]:
    runs: list[Path] = []
    skipped = 0
    chunk = array("Q")
    done = 0

    def flush() -> None:
        run = tmp / f"run{len(runs)}.bin"
        array("Q", sorted(chunk)).tofile(run.open("wb"))
        runs.append(run)
        del chunk[:]

    with source.open("rb") as f:
        for n, line in enumerate(f):
            done += len(line)
            phone, _, prefs = line.decode("ascii", "replace").partition(",")
            digits = number_digits(phone)
            if digits is None:
                skipped += n > 0  # a header row is not a skipped number
                continue
            chunk.append(digits << 8 | preference_mask(prefs))
            if len(chunk) >= RUN_SIZE:
                flush()
                if on_progress is not None:
                    on_progress(done)
    if chunk:
        flush()
    if on_progress is not None:
        on_progress(done)
    return runs, skipped


def _read_run(path: Path) -> Iterator[int]:
    with path.open("rb") as f:
        while True:
            block = array("Q")
            try:
                block.fromfile(f, 65536)
            except EOFError:
                yield from block
                return
            yield from block


def list_dir(store: object, data_dir: str | Path | None) -> Path | None:
    """Where the imported list lives: beside an embedded store's database file, else (a
    database server) in the data directory; None when neither is known."""
    path = getattr(store, "path", None)  # the file of an embedded (SQLite) store
    if isinstance(path, str):
        return Path(path).parent
    return Path(data_dir) if data_dir is not None else None


def import_csv(
    source: Path, target_dir: Path, on_progress: Callable[[int], None] | None = None
) -> ImportResult:
    """Replace the registry in ``target_dir`` with the numbers of the CSV ``source``.

    Rows are ``phone,preferences``; a header row is allowed. A number listed twice keeps its most
    restrictive entry. The new file replaces the old one atomically (readers reopen it).
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    final = target_dir / FILE_NAME
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".dnd-import-") as tmpdir:
        tmp = Path(tmpdir)
        runs, skipped = _runs(source, tmp, on_progress)
        out_path = tmp / "dnd.new"
        count = 0
        with out_path.open("wb") as out:
            out.write(_HEADER.pack(MAGIC, 0))
            buf = array("Q")
            last = -1
            for key in heapq.merge(*(_read_run(r) for r in runs)):
                if key >> 8 == last:
                    continue  # keys sort by number, then mask: the first is the most restrictive
                last = key >> 8
                buf.append(key)
                if len(buf) >= 65536:
                    buf.tofile(out)
                    count += len(buf)
                    del buf[:]
            buf.tofile(out)
            count += len(buf)
            out.seek(0)
            out.write(_HEADER.pack(MAGIC, count))
        os.replace(out_path, final)
    return ImportResult(count, skipped, final.stat().st_size, final)


class DndFile:
    """Read-only view of an imported registry file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as f:
            magic, count = _HEADER.unpack(f.read(_HEADER.size))
            if magic != MAGIC:
                raise ValueError(f"{path} is not a Dakghar DND file")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if count else None
        self.count: int = int(count)
        self._keys = (
            memoryview(self._map)[_HEADER.size : _HEADER.size + 8 * count].cast("Q")
            if self._map is not None
            else memoryview(array("Q"))
        )

    def __len__(self) -> int:
        return self.count

    def preferences(self, e164: str) -> int | None:
        """The accepted-category mask of a registered number, or None when it is not listed."""
        digits = number_digits(e164)
        if digits is None:
            return None
        keys = self._keys
        i = bisect.bisect_left(keys, digits << 8)
        if i < self.count:
            key = int(keys[i])
            if key >> 8 == digits:
                return key & 0xFF
        return None

    def close(self) -> None:
        """Release the mapping."""
        self._keys.release()
        if self._map is not None:
            self._map.close()
