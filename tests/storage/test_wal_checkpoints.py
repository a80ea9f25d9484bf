"""SQLite: the server checkpoints the write-ahead log itself, so that writers do not."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from loadbay.storage.database import Database
from loadbay.storage.wal_checkpoints import BACKSTOP_PAGES
from tests.factories import BATCHES, activity, batch


def _rows_in_the_database_file(database_file: Path) -> int:
    """Activities in the database file alone: `immutable` reads no write-ahead log."""
    with sqlite3.connect(f"file:{database_file}?immutable=1", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM activities").fetchone()[0])


async def test_a_batch_reaches_the_database_file_without_another_write(
    client: httpx.AsyncClient, backend: str, database_url: str
) -> None:
    if backend == "postgres":
        pytest.skip("PostgreSQL checkpoints its own log")
    database_file = Path(make_url(database_url).database or "")
    answer = await client.post(BATCHES, json=batch(*(activity(n) for n in range(3))))
    assert answer.status_code == 201, answer.text

    # Far below the writers' own checkpoint (BACKSTOP_PAGES): only the server's task copies it.
    deadline = time.monotonic() + 10
    while _rows_in_the_database_file(database_file) < 3:
        assert time.monotonic() < deadline, "the write-ahead log was never checkpointed"
        await asyncio.sleep(0.05)


async def test_writers_checkpoint_only_past_the_backstop(database_url: str) -> None:
    db = Database(database_url)
    try:
        if db.dialect != "sqlite":
            pytest.skip("PostgreSQL checkpoints its own log")
        async with db.write() as unit:
            pages = await unit.conn.exec_driver_sql("PRAGMA wal_autocheckpoint")
            assert pages.scalar() == BACKSTOP_PAGES
    finally:
        await db.dispose()
