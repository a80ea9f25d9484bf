"""The floor: a naive FastAPI app that writes one row per record, one statement at a time.

    BENCH_FLOOR_DB=<postgresql://… | /path/to/file.db> python -m uvicorn bench.floor:app

`POST /entities` takes the same JSON array as Loadbay's `/operator-data-api/batch/entities`,
parses it with orjson and, in one transaction per request, awaits one
`INSERT … ON CONFLICT DO UPDATE` per record (asyncpg on PostgreSQL, aiosqlite on SQLite) —
what a hand-written endpoint without a bulk path does. No validation, no events, no jobs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiosqlite
import asyncpg
import orjson
from fastapi import FastAPI, Request

from bench.data import TENANT

TABLE = """CREATE TABLE IF NOT EXISTS floor_entities (
    id {id} PRIMARY KEY, tenant TEXT NOT NULL, type TEXT NOT NULL, external_id TEXT NOT NULL,
    data {json} NOT NULL, UNIQUE (tenant, type, external_id))"""
UPSERT = """INSERT INTO floor_entities (tenant, type, external_id, data) VALUES ({})
    ON CONFLICT (tenant, type, external_id) DO UPDATE SET data = excluded.data"""

Row = tuple[str, str, str, str]


class Store(Protocol):
    async def write(self, rows: list[Row]) -> None: ...

    async def close(self) -> None: ...


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.sql = UPSERT.format("$1, $2, $3, $4")

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=10)
        await pool.execute(TABLE.format(id="BIGSERIAL", json="JSONB"))
        return cls(pool)

    async def write(self, rows: list[Row]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for row in rows:
                await conn.execute(self.sql, *row)

    async def close(self) -> None:
        await self.pool.close()


class SqliteStore:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.sql = UPSERT.format("?, ?, ?, ?")
        self.lock = asyncio.Lock()  # one connection: one transaction at a time

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
        conn = await aiosqlite.connect(path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute(TABLE.format(id="INTEGER", json="TEXT"))
        return cls(conn)

    async def write(self, rows: list[Row]) -> None:
        async with self.lock:
            await self.conn.execute("BEGIN")
            try:
                for row in rows:
                    await self.conn.execute(self.sql, row)
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def close(self) -> None:
        await self.conn.close()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    target = os.environ["BENCH_FLOOR_DB"]
    store: Store
    if target.startswith("postgresql"):
        store = await PostgresStore.open(target)
    else:
        store = await SqliteStore.open(target)
    app.state.store = store
    try:
        yield
    finally:
        await store.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/entities")
async def entities(request: Request) -> dict[str, Any]:
    records = orjson.loads(await request.body())
    rows = [
        (
            TENANT,
            record["entityType"],
            record["externalId"],
            orjson.dumps(record["data"]).decode(),
        )
        for record in records
    ]
    await request.app.state.store.write(rows)
    return {"written": len(rows)}
