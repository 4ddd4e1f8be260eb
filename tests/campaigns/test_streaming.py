"""A 200,000-row CSV goes through the endpoint without the process's memory growing with it.

The upload is streamed to a temporary file and read back row by row; what stays in memory is the
set of numbers seen (for duplicates) and one chunk of messages. Peak RSS (``ru_maxrss``) may grow
by far less than the CSV would take as Python objects (~200 MB for rows of lists of strings).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Gateway

ROWS = 200_000
BOUND_MB = 120


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chunks() -> Iterator[bytes]:
    yield b"phone,name,code\n"
    block: list[str] = []
    for i in range(ROWS):
        block.append(f"98{i:08d},Customer {i},C{i % 997}\n")
        if len(block) == 5000:
            yield "".join(block).encode()
            block.clear()


def body(boundary: str) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="body"\r\n\r\n'
        "Hi {name}, use code {code}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\ntransactional\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    yield from chunks()
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.timeout(60)
def test_two_hundred_thousand_rows_stream_in_bounded_memory(gateway: Gateway) -> None:
    t = gateway.tenant()
    before = peak_rss_mb()
    r = gateway.client.post(
        "/v1/campaigns",
        content=body("b0undary"),
        headers={**t.headers, "Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert r.status_code == 201, r.text
    c = r.json()
    while c["status"] == "ingesting":  # the rows are read after the answer
        time.sleep(0.1)
        c = gateway.client.get(f"/v1/campaigns/{c['id']}", headers=t.headers).json()
    assert (c["total"], c["valid"], c["queued"], c["invalid"]) == (ROWS, ROWS, ROWS, 0)
    grown = peak_rss_mb() - before
    print(f"peak RSS grew by {grown:.0f} MB for {ROWS} rows")
    assert grown < BOUND_MB
