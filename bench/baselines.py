"""Baselines measured in the same run: ceiling, peer and floor.

ceiling  what the database itself takes for the same rows without any server in front,
         each kind of row in Loadbay's own table (bench/ceilings.py):
         PostgreSQL: asyncpg COPY (`copy_records_to_table`);
         SQLite: stdlib sqlite3, 500-row multi-VALUES INSERTs in one transaction.
         Its "update" lines re-write every row (COPY into a temp table + one
         INSERT … SELECT … ON CONFLICT DO UPDATE / multi-VALUES … ON CONFLICT DO UPDATE).
peer     Datasette 1.0's JSON write API (`/-/insert`, then `/-/upsert`), always on SQLite.
floor    bench/floor.py under uvicorn: one awaited INSERT … ON CONFLICT per record.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench import data, pg
from bench.ceilings import CeilingRows, Row, ceiling_rows, sqlite_values
from bench.client import Measurement, measure, print_line, warm_up
from bench.plan import Run
from bench.server import VENV_BIN, Server, free_port
from loadbay.storage import migrate
from loadbay.storage.database import Database

PEER_TABLE = """CREATE TABLE entities (
    tenant TEXT NOT NULL, type TEXT NOT NULL, external_id TEXT NOT NULL, data TEXT,
    PRIMARY KEY (tenant, type, external_id))"""
JSON = {"Content-Type": "application/json"}


def ceiling(run: Run, out: list[Measurement]) -> None:
    """Each kind of row Loadbay writes, written by the database alone (bench/ceilings.py)."""
    kinds = ceiling_rows(run.plan.ceiling_records)
    if run.postgres:
        name = run.new_database("ceiling")
        asyncio.run(_loadbay_schema(pg.database_url(run.admin_url, name, "postgresql+asyncpg")))
        url = pg.database_url(run.admin_url, name)
        label, seconds = "COPY", asyncio.run(_ceiling_postgres(url, kinds))
    else:
        path = run.tmp / "ceiling.db"
        asyncio.run(_loadbay_schema(f"sqlite+aiosqlite:///{path}"))
        label, seconds = "INSERTs", _ceiling_sqlite(path, kinds)
    for kind, passes in zip(kinds, seconds, strict=True):
        for op, took in zip(("insert", "update"), passes, strict=False):
            name = f"ceiling: {label} {kind.rows}, {op}"
            seen = Measurement(name, "ceiling", op, None, len(kind.inserted), 0, took)
            seen.rows = kind.rows
            print_line(seen)
            out.append(seen)


async def _loadbay_schema(url: str) -> None:
    """Loadbay's tables as its migrations make them (keys, indexes, storage settings such as
    the upserted tables' fillfactor), without the triggers that capture events."""
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


async def _ceiling_postgres(url: str, kinds: list[CeilingRows]) -> list[list[float]]:
    conn = await asyncpg.connect(url)
    try:
        triggers = "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
        for trigger, table in await conn.fetch(triggers):
            await conn.execute(f'DROP TRIGGER "{trigger}" ON {table}')
        return [await _copy_passes(conn, kind) for kind in kinds]
    finally:
        await conn.close()


async def _copy_passes(conn: asyncpg.Connection, kind: CeilingRows) -> list[float]:
    """COPY the rows in; then, if the kind has an update pass, COPY them into a staging
    table and upsert them all through the key."""
    table, columns = kind.table.name, list(kind.columns)
    start = time.perf_counter()
    await conn.copy_records_to_table(table, records=kind.inserted, columns=columns)
    passes = [time.perf_counter() - start]
    await conn.execute(f"ANALYZE {table}")  # autovacuum may be off: no bad plans
    if kind.updated is None:
        return passes
    names = ", ".join(columns)
    start = time.perf_counter()
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE ceiling_stage ON COMMIT DROP AS "
            f"SELECT {names} FROM {table} WITH NO DATA"
        )
        await conn.copy_records_to_table("ceiling_stage", records=kind.updated, columns=columns)
        await conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM ceiling_stage {kind.on_conflict}"
        )
    passes.append(time.perf_counter() - start)
    return passes


def _ceiling_sqlite(path: Path, kinds: list[CeilingRows]) -> list[list[float]]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")  # as Loadbay's connections
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        for (trigger,) in triggers.fetchall():
            conn.execute(f'DROP TRIGGER "{trigger}"')
        seconds = []
        for kind in kinds:
            passes = [_sqlite_chunks(conn, kind, kind.inserted, "")]
            if kind.updated is not None:
                passes.append(_sqlite_chunks(conn, kind, kind.updated, f" {kind.on_conflict}"))
            seconds.append(passes)
        return seconds
    finally:
        conn.close()


def _sqlite_chunks(
    conn: sqlite3.Connection, kind: CeilingRows, rows: list[Row], tail: str, per: int = 500
) -> float:
    """The rows in one transaction, `per` to an INSERT; their values converted untimed."""
    values = [value for row in rows for value in sqlite_values(row)]
    width = len(kind.columns)
    one = f"({', '.join('?' * width)})"
    head = f"INSERT INTO {kind.table.name} ({', '.join(kind.columns)}) VALUES "
    start = time.perf_counter()
    conn.execute("BEGIN")
    for offset in range(0, len(rows), per):
        count = min(per, len(rows) - offset)
        chunk = values[offset * width : (offset + count) * width]
        conn.execute(head + ",".join([one] * count) + tail, chunk)
    conn.execute("COMMIT")
    return time.perf_counter() - start


def peer(run: Run, out: list[Measurement], clients: int = 4) -> None:
    """Datasette on a fresh SQLite file, its table created beforehand, a root API token."""
    path = run.tmp / "peer.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(PEER_TABLE)
    conn.close()
    datasette = str(VENV_BIN / "datasette")
    env = {"DATASETTE_SECRET": secrets.token_hex(16)}
    token = subprocess.run(
        [datasette, "create-token", "root"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    port = free_port()
    # --root lets the actor "root" (whose signed token we hold) insert and update rows;
    # max_insert_rows is 100 by default, 1,000 here to send the same batches as Loadbay.
    argv = [datasette, "serve", str(path), "--host", "127.0.0.1", "--port", str(port), "--root"]
    argv += ["--setting", "max_insert_rows", "1000"]
    server = Server("datasette", argv, port, run.tmp / "datasette.log", env)
    try:
        server.wait_ready("/-/versions.json")
        headers = {**JSON, "Authorization": f"Bearer {token}"}
        count = run.plan.peer_records
        warm_up(
            server, "/peer/entities/-/insert", data.peer_batches(_warm_up_range(count)), headers
        )
        for op, action, updated in (("insert", "insert", False), ("update", "upsert", True)):
            out.append(
                measure(
                    server,
                    f"peer: Datasette /-/{action}, {op}",
                    "peer",
                    op,
                    f"/peer/entities/-/{action}",
                    data.peer_batches(range(count), updated),
                    clients=clients,
                    headers=headers,
                )
            )
    finally:
        server.stop()


def floor(run: Run, out: list[Measurement], clients: int = 4) -> None:
    """bench/floor.py under uvicorn, on a fresh database of the run's kind."""
    if run.postgres:
        target = pg.database_url(run.admin_url, run.new_database("floor"))
    else:
        target = str(run.tmp / "floor.db")
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.floor:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    server = Server("floor", argv, port, run.tmp / "floor.log", {"BENCH_FLOOR_DB": target})
    try:
        server.wait_ready("/healthz")
        count = run.plan.floor_records
        warm_up(server, "/entities", data.entity_batches(_warm_up_range(count)), JSON)
        for op, updated in (("insert", False), ("update", True)):
            out.append(
                measure(
                    server,
                    f"floor: one INSERT per record, {op}",
                    "floor",
                    op,
                    "/entities",
                    data.entity_batches(range(count), updated),
                    clients=clients,
                    headers=JSON,
                )
            )
    finally:
        server.stop()


def _warm_up_range(count: int) -> range:
    """Keys no measured pass uses, so a warm-up never turns a measured insert into an update."""
    return range(count + 1_000_000, count + 1_001_000)
