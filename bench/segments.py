"""Benchmark: count_segments calls per second (dakghar.core.text).

Measures, for four typical bodies, how many ``count_segments`` calls one core does per second:
(a) 100-char plain ASCII (the fast path), (b) 300-char GSM text with extension characters
(greedy packing over septets), (c) 100-char Hindi (UCS-2), (d) 100-char text with curly quotes
counted with smart encoding on (normalise, then count). Each figure is the median of 5 runs of
about 0.4 s each, so the script takes about 10 s. Run: ``PYTHONPATH=src python bench/segments.py``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from dakghar.core.text import SegmentInfo, count_segments

# No `statistics` import: bench/numbers.py shadows the stdlib `numbers` module for scripts run
# from this folder, and statistics -> fractions -> decimal imports it.

RUNS = 5  # odd, so the median is the middle run
RUN_SECONDS = 0.4

OTP = "Your Dakghar code is 482913. It expires in 10 minutes. Never share it, not even with us!!"
HINDI = "आपका डाकघर सत्यापन कोड 482913 है। यह 10 मिनट में समाप्त होगा। इसे किसी के साथ साझा न करें।"
CURLY = "“Dakghar” says: it’s your code 482913 — valid 10 min. Don’t share it… thanks & bye!!"
GSM_EXT = ("Total: €120 [paid] {ref ~42} a|b ^up\\down. " * 8)[:300]


def calls_per_second(call: Callable[[], SegmentInfo]) -> float:
    """One run: repeat ``call`` in batches for about RUN_SECONDS, return the call rate."""
    batch = 1000
    calls = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < RUN_SECONDS:
        for _ in range(batch):
            call()
        calls += batch
    return calls / elapsed


def main() -> None:
    cases: list[tuple[str, str, bool]] = [
        ("(a) ASCII", (OTP * 2)[:100], False),
        ("(b) GSM + extension chars", GSM_EXT, False),
        ("(c) Hindi", (HINDI * 2)[:100], False),
        ("(d) smart, curly quotes", (CURLY * 2)[:100], True),
    ]
    print(f"count_segments calls/s, median of {RUNS} runs of {RUN_SECONDS}s, Python {sys.version}")
    for label, text, smart in cases:
        info = count_segments(text, smart_encoding=smart)

        def call(text: str = text, smart: bool = smart) -> SegmentInfo:
            return count_segments(text, smart_encoding=smart)

        rates = [calls_per_second(call) for _ in range(RUNS)]
        median = sorted(rates)[RUNS // 2]
        print(
            f"{label:28} {len(text):4} chars  {info.encoding.value} {info.units:3} units "
            f"{info.segments} seg  {median:>12,.0f}/s  ({1e6 / median:.2f} us/call, "
            f"runs {min(rates):,.0f}..{max(rates):,.0f})"
        )


if __name__ == "__main__":
    main()
