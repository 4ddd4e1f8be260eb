"""The national DND list: import time, file size and memory for ten million numbers, then lookups.

Writes a synthetic NCPR-style CSV (``phone,preferences``: 10-digit Indian numbers, three in four
fully blocked, the rest accepting one or two categories), imports it with
``dakghar.compliance.dnd.import_csv`` (what ``dakghar dnd import`` runs) and prints the import
time, the size of the file and the peak resident memory of the import. Then times membership
checks through ``DndRegistry.blocks`` (the call the accept path makes), half of them on listed
numbers, and prints lookups per second and the mean microseconds per lookup.

    python bench/dnd.py [--count 10000000] [--lookups 1000000]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

from dakghar.compliance import dnd
from dakghar.core.message import MessageType
from dakghar.pipeline.dnd import DndRegistry


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_csv(path: Path, count: int, seed: int) -> list[int]:
    """A CSV of ``count`` distinct numbers; returns a sample of them for the lookups."""
    rng = random.Random(seed)
    step = 4_000_000_000 // count  # spread over 6000000000-9999999999, no duplicates
    stride = 7919  # a prime: i -> i * stride % count visits every slot once, out of order
    sample: list[int] = []
    with path.open("w", buffering=1 << 20) as f:
        f.write("phone,preferences\n")
        lines: list[str] = []
        for i in range(count):
            number = 6_000_000_000 + (i * stride % count) * step + rng.randrange(step)
            prefs = "0" if i % 4 else rng.choice(("1", "2|5", "3", "1|8"))
            lines.append(f"{number},{prefs}\n")
            if len(lines) == 100_000:
                f.writelines(lines)
                lines.clear()
            if i % 97 == 0:
                sample.append(number)
        f.writelines(lines)
    return sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000_000)
    ap.add_argument("--lookups", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dakghar-dnd-bench-") as tmp:
        src = Path(tmp) / "ncpr.csv"
        t0 = time.perf_counter()
        listed = write_csv(src, args.count, seed=7)
        print(f"CSV: {args.count:,} numbers, {src.stat().st_size / 1e6:.0f} MB "
              f"(written in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
        before = peak_rss_mb()
        t0 = time.perf_counter()
        result = dnd.import_csv(src, Path(tmp) / "data")
        took = time.perf_counter() - t0
        print(f"import: {result.numbers:,} numbers in {took:.1f} s "
              f"({result.numbers / took:,.0f}/s), file {result.bytes / 1e6:.0f} MB "
              f"({result.bytes / max(1, result.numbers):.1f} B/number), "
              f"peak RSS {peak_rss_mb():.0f} MB (before import {before:.0f} MB)")  # fmt: skip
        src.unlink()
        registry = DndRegistry(path=result.path)
        rng = random.Random(11)
        queries = [
            f"+91{rng.choice(listed)}" if i % 2 else f"+91{rng.randrange(6_000_000_000, 10**10)}"
            for i in range(args.lookups)
        ]
        promo = MessageType.PROMOTIONAL
        t0 = time.perf_counter()
        blocked = sum(registry.blocks(q, promo, sandbox=False, category="banking") for q in queries)
        took = time.perf_counter() - t0
        print(f"lookups: {args.lookups:,} in {took:.2f} s = {args.lookups / took:,.0f}/s "
              f"({took / args.lookups * 1e6:.2f} us each; {blocked:,} blocked)")  # fmt: skip


if __name__ == "__main__":
    main()
