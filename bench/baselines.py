"""Baselines measured in the same run, on the same entity rows: ceiling, peer and floor.

ceiling  what the database itself takes without any server in front:
         PostgreSQL: asyncpg COPY (`copy_records_to_table`) into a plain table;
         SQLite: stdlib sqlite3, 500-row multi-VALUES INSERTs in one transaction.
         Its "update" line re-writes every row (COPY into a temp table + one
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
from bench.client import Measurement, measure, print_line, warm_up
from bench.plan import Run
from bench.server import VENV_BIN, Server, free_port

COLUMNS = ["tenant", "type", "external_id", "data"]
PG_TABLE = """CREATE TABLE ceiling_entities (
    id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, type TEXT NOT NULL,
    external_id TEXT NOT NULL, data JSONB NOT NULL, UNIQUE (tenant, type, external_id))"""
PG_STAGE = """CREATE TEMP TABLE ceiling_stage
    (tenant TEXT, type TEXT, external_id TEXT, data JSONB) ON COMMIT DROP"""
PG_UPSERT = """INSERT INTO ceiling_entities (tenant, type, external_id, data)
    SELECT tenant, type, external_id, data FROM ceiling_stage
    ON CONFLICT (tenant, type, external_id) DO UPDATE SET data = excluded.data"""
SQLITE_TABLE = """CREATE TABLE ceiling_entities (
    id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, type TEXT NOT NULL,
    external_id TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (tenant, type, external_id))"""
SQLITE_INSERT = "INSERT INTO ceiling_entities (tenant, type, external_id, data) VALUES "
SQLITE_CONFLICT = " ON CONFLICT (tenant, type, external_id) DO UPDATE SET data = excluded.data"
PEER_TABLE = """CREATE TABLE entities (
    tenant TEXT NOT NULL, type TEXT NOT NULL, external_id TEXT NOT NULL, data TEXT,
    PRIMARY KEY (tenant, type, external_id))"""
JSON = {"Content-Type": "application/json"}
Rows = list[tuple[str, str, str, str]]


def ceiling(run: Run, out: list[Measurement]) -> None:
    count = run.plan.ceiling_records
    rows, updated = data.entity_tuples(range(count)), data.entity_tuples(range(count), True)
    if run.postgres:
        url = pg.database_url(run.admin_url, run.new_database("ceiling"))
        label = "COPY"
        seconds = asyncio.run(_ceiling_postgres(url, rows, updated))
    else:
        label = "sqlite3 multi-VALUES"
        seconds = _ceiling_sqlite(run.tmp / "ceiling.db", rows, updated)
    for op, took in zip(("insert", "update"), seconds, strict=True):
        seen = Measurement(f"ceiling: {label}, {op}", "ceiling", op, None, count, 0, took)
        print_line(seen)
        out.append(seen)


async def _ceiling_postgres(url: str, rows: Rows, updated: Rows) -> tuple[float, float]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(PG_TABLE)
        start = time.perf_counter()
        await conn.copy_records_to_table("ceiling_entities", records=rows, columns=COLUMNS)
        inserted = time.perf_counter() - start
        await conn.execute("ANALYZE ceiling_entities")  # autovacuum may be off: no bad plans
        start = time.perf_counter()
        async with conn.transaction():
            await conn.execute(PG_STAGE)
            await conn.copy_records_to_table("ceiling_stage", records=updated, columns=COLUMNS)
            await conn.execute(PG_UPSERT)
        return inserted, time.perf_counter() - start
    finally:
        await conn.close()


def _ceiling_sqlite(path: Path, rows: Rows, updated: Rows) -> tuple[float, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(SQLITE_TABLE)
        return _sqlite_chunks(conn, rows, ""), _sqlite_chunks(conn, updated, SQLITE_CONFLICT)
    finally:
        conn.close()


def _sqlite_chunks(conn: sqlite3.Connection, rows: Rows, tail: str, per: int = 500) -> float:
    start = time.perf_counter()
    conn.execute("BEGIN")
    for offset in range(0, len(rows), per):
        chunk = rows[offset : offset + per]
        values = ",".join(["(?, ?, ?, ?)"] * len(chunk))
        conn.execute(SQLITE_INSERT + values + tail, [value for row in chunk for value in row])
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
