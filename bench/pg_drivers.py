"""psycopg 3 (the PostgreSQL store's driver) beside asyncpg on the store's kinds of statement.

The scale-out store runs the shared lifecycle SQL through psycopg 3 in a writer thread, where
``../shared/notes/dependencies.md`` suggested asyncpg; this prints both on the same server, so
the choice (README, "Design notes") rests on a figure. Per driver, medians of --rounds:

  insert   rows/s, 100 seven-column rows per transaction (``executemany``)
  point    point selects/s by primary key, one at a time
  update   single-row updates/s, 50 per transaction (the shape of a batch of status moves)

    python bench/pg_drivers.py [--server postgresql://postgres@127.0.0.1:5432/test] [--rows 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg
import psycopg

DDL = (
    "CREATE TABLE bench_rows (id TEXT PRIMARY KEY, account TEXT, status TEXT, lane INT, "
    "body TEXT, created BIGINT, updated BIGINT)"
)


def rows(n: int) -> list[tuple[object, ...]]:
    return [(f"m{i:08d}", "acc", "queued", 1, "hello there", i, i) for i in range(n)]


def psycopg_round(url: str, n: int) -> tuple[float, float, float]:
    data = rows(n)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS bench_rows")
        c.execute(DDL)
        t = time.perf_counter()
        for i in range(0, n, 100):
            c.execute("BEGIN")
            c.cursor().executemany(
                "INSERT INTO bench_rows VALUES (%s, %s, %s, %s, %s, %s, %s)", data[i : i + 100]
            )
            c.execute("COMMIT")
        insert = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(0, n, 4):
            c.execute("SELECT status FROM bench_rows WHERE id = %s", (f"m{i:08d}",)).fetchone()
        point = (n / 4) / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(0, n, 50):
            c.execute("BEGIN")
            for j in range(i, i + 50):
                c.execute("UPDATE bench_rows SET status = 'sent' WHERE id = %s", (f"m{j:08d}",))
            c.execute("COMMIT")
        update = n / (time.perf_counter() - t)
        c.execute("DROP TABLE bench_rows")
    return insert, point, update


async def asyncpg_round(url: str, n: int) -> tuple[float, float, float]:
    data = rows(n)
    c = await asyncpg.connect(url)
    try:
        await c.execute("DROP TABLE IF EXISTS bench_rows")
        await c.execute(DDL)
        t = time.perf_counter()
        for i in range(0, n, 100):
            async with c.transaction():
                await c.executemany(
                    "INSERT INTO bench_rows VALUES ($1, $2, $3, $4, $5, $6, $7)", data[i : i + 100]
                )
        insert = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(0, n, 4):
            await c.fetchrow("SELECT status FROM bench_rows WHERE id = $1", f"m{i:08d}")
        point = (n / 4) / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(0, n, 50):
            async with c.transaction():
                for j in range(i, i + 50):
                    await c.execute("UPDATE bench_rows SET status = 'sent' WHERE id = $1",
                                    f"m{j:08d}")  # fmt: skip
        update = n / (time.perf_counter() - t)
        await c.execute("DROP TABLE bench_rows")
    finally:
        await c.close()
    return insert, point, update


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    name = f"dk_drivers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.server.rsplit("/", 1)[0] + "/" + name
    try:
        results: dict[str, list[tuple[float, float, float]]] = {"psycopg": [], "asyncpg": []}
        for _ in range(args.rounds):  # interleaved
            results["psycopg"].append(psycopg_round(url, args.rows))
            results["asyncpg"].append(asyncio.run(asyncpg_round(url, args.rows)))
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"psycopg {psycopg.__version__}, asyncpg {asyncpg.__version__}; {args.rows:,} rows, "
          f"{args.rounds} rounds interleaved, medians")  # fmt: skip
    print(f"{'driver':10s} {'insert rows/s':>14s} {'point q/s':>10s} {'update rows/s':>14s}")
    for driver, rs in results.items():
        ins, pt, up = (statistics.median(r[k] for r in rs) for k in range(3))
        print(f"{driver:10s} {ins:14,.0f} {pt:10,.0f} {up:14,.0f}")


if __name__ == "__main__":
    main()
