"""Throughput of a file job (instances from NDJSON) against a per-line baseline, same run.

    .venv/bin/python bench/instance_files.py [--lines 50000] [--postgres URL]

  file job     loadbay.files.jobs: streamed, 2,000-line chunks, hooks, error files, committed chunks
  per line     the same file, one Core INSERT … ON CONFLICT DO UPDATE per line (a tenth of it)
Prints lines/s and the ratio of each to the file job, on SQLite and (if reachable) PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson
from sqlalchemy import delete, make_url

from loadbay.config import Settings
from loadbay.files.jobs import FileJobs
from loadbay.files.store import FileStore
from loadbay.ingest.instances import validate_instance
from loadbay.storage import migrate
from loadbay.storage.database import Database
from loadbay.storage.kinds import kind_of
from loadbay.storage.tables import file_jobs, instances, job_results, jobs
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow

TYPE = "6a1f0ee4-2e0b-4a33-86e5-6f2f34c61a0b"


def records(count: int) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "id": f"00000000-0000-4000-8000-{n + 1:012d}",
                "title": f"Title {n}",
                "source": "MARC",
                "instanceTypeId": TYPE,
                "hrid": f"bench{n:09d}",
                "contributors": [{"name": f"Author {n % 97}"}],
            }
        )
        + b"\n"
        for n in range(count)
    )


async def reset(db: Database) -> None:
    async with db.write() as unit:
        for table in (file_jobs, job_results, jobs, instances):
            await unit.conn.execute(delete(table))
        await ensure_tenant(unit.conn, "bench", "bench")


async def file_job(db: Database, settings: Settings, data: bytes) -> float:
    files = FileStore(settings.files_url)
    await files.put_bytes("bench", "bench.ndjson", data)
    runner = FileJobs(db, files, settings)
    start = time.perf_counter()
    job_id = await runner.create("bench", "bench.ndjson", False, run_here=True)
    await runner.run(job_id)
    elapsed = time.perf_counter() - start
    assert (await runner.view(job_id)).succeeded_count == data.count(b"\n")
    return data.count(b"\n") / elapsed


async def per_line(db: Database, data: bytes) -> float:
    lines = data.splitlines()
    start = time.perf_counter()
    for line in lines:
        row = validate_instance(orjson.loads(line))
        row.pop("expected_version")
        now = utcnow()
        values = {**row, "tenant_id": "bench", "version": 1, "created_at": now, "updated_at": now}
        async with db.write() as unit:
            statement = kind_of(unit.conn).upsert_insert(instances).values(**values)
            await unit.conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["tenant_id", "instance_id"],
                    set_={"document": statement.excluded.document, "updated_at": now},
                )
            )
    return len(lines) / (time.perf_counter() - start)


async def bench(url: str, lines: int, folder: Path) -> None:
    settings = Settings(database_url=url, data_dir=folder)
    db = Database(url)
    try:
        await migrate.upgrade(db)
        data = records(lines)
        await reset(db)
        engine = await file_job(db, settings, data)
        await reset(db)
        baseline = await per_line(db, b"\n".join(data.splitlines()[: lines // 10]) + b"\n")
    finally:
        await db.dispose()
    print(f"\n{make_url(url).get_backend_name()}: {lines} lines")
    print(f"  file job   {engine:>10,.0f} lines/s   file job / this = 1.00x")
    print(f"  per line   {baseline:>10,.0f} lines/s   file job / this = {engine / baseline:5.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument(
        "--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/loadbay_bench"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        await bench(f"sqlite+aiosqlite:///{folder}/bench.db", args.lines, Path(folder))
        try:
            await bench(args.postgres, args.lines, Path(folder))
        except OSError as error:
            print(f"\npostgresql: skipped ({error})")


if __name__ == "__main__":
    asyncio.run(main())
