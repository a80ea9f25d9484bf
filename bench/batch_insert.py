"""Throughput of the engine's bulk write against baselines measured in the same run.

    .venv/bin/python bench/batch_insert.py [--rows 20000] [--batch 1000] [--postgres URL]

For each database (SQLite in a temp folder; PostgreSQL if reachable) it writes the same
activities in batches of `--batch` records, one transaction per batch, three ways:
  engine      loadbay.ingest.engine.write_records (COPY + INSERT…SELECT / multi-VALUES RETURNING)
  core-many   SQLAlchemy Core executemany of INSERT … ON CONFLICT DO NOTHING (insertmanyvalues)
  row-by-row  one INSERT … ON CONFLICT DO NOTHING RETURNING per record (on a tenth of the rows)
and prints rows/s and the ratio of each to the engine. Then it writes every row again as an
update (upsert) with the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, make_url

from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.engine import write_records
from loadbay.storage import migrate
from loadbay.storage.database import Database, WriteUnit
from loadbay.storage.kinds import kind_of
from loadbay.storage.tables import activities
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow

Batch = list[dict[str, Any]]
Writer = Callable[[WriteUnit, Batch], Awaitable[None]]


def make_records(count: int) -> list[dict[str, Any]]:
    return [
        {
            "coordinator_id": f"coord-{n % 50}",
            "mentor_id": f"mentor-{n // 7}",
            "activity_type": ("workshop", "one_to_one", "review", "call", "visit", "demo", "lab")[
                n % 7
            ],
            "activity_date": "2026-03-28",
            "duration_minutes": 30 + n % 90,
        }
        for n in range(count)
    ]


def rows_for_core(batch: Batch) -> Batch:
    now = utcnow()
    validated = [ACTIVITIES.validate(r) for r in batch]
    return [
        {**r, "tenant_id": "bench", "version": 1, "created_at": now, "updated_at": now}
        for r in validated
    ]


async def engine_insert(
    unit: WriteUnit, batch: Batch, *, mode: ConflictMode = ConflictMode.FAIL
) -> None:
    results = await write_records(
        unit,
        ACTIVITIES,
        "bench",
        list(enumerate(batch)),
        mode=mode,
        chunk_size=1000,
        now=utcnow(),
    )
    assert all(r.succeeded for r in results)


async def engine_upsert(unit: WriteUnit, batch: Batch) -> None:
    await engine_insert(unit, batch, mode=ConflictMode.UPDATE)


async def core_executemany(unit: WriteUnit, batch: Batch) -> None:
    statement = kind_of(unit.conn).upsert_insert(activities).on_conflict_do_nothing()
    await unit.conn.execute(statement, rows_for_core(batch))


async def row_by_row(unit: WriteUnit, batch: Batch) -> None:
    statement = (
        kind_of(unit.conn)
        .upsert_insert(activities)
        .on_conflict_do_nothing()
        .returning(activities.c.id)
    )
    for row in rows_for_core(batch):
        (await unit.conn.execute(statement, row)).scalar_one()


async def timed(db: Database, writer: Writer, records: list[dict[str, Any]], batch: int) -> float:
    start = time.perf_counter()
    for offset in range(0, len(records), batch):
        async with db.write() as unit:
            await writer(unit, records[offset : offset + batch])
    return len(records) / (time.perf_counter() - start)


async def reset(db: Database) -> None:
    async with db.write() as unit:
        await unit.conn.execute(delete(activities))
        # Other benches' rows may reference the tenant: keep it, don't recreate it.
        await ensure_tenant(unit.conn, "bench", "bench")


async def bench(url: str, rows: int, batch: int) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
        records = make_records(rows)
        measured: dict[str, float] = {}
        for name, writer, share in (
            ("engine", engine_insert, 1),
            ("core-many", core_executemany, 1),
            ("row-by-row", row_by_row, 10),
        ):
            await reset(db)
            measured[name] = await timed(db, writer, records[: rows // share], batch)
        measured["engine upsert (all updates)"] = await timed(db, engine_upsert, records, batch)
    finally:
        await db.dispose()
    print(f"\n{make_url(url).get_backend_name()}: {rows} rows in batches of {batch}")
    base = measured["engine"]
    for name, rate in measured.items():
        print(f"  {name:<28} {rate:>10,.0f} rows/s   engine / this = {base / rate:5.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/loadbay_bench"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        await bench(f"sqlite+aiosqlite:///{folder}/bench.db", args.rows, args.batch)
    try:
        await bench(args.postgres, args.rows, args.batch)
    except OSError as error:
        print(f"\npostgresql: skipped ({error})")


if __name__ == "__main__":
    asyncio.run(main())
