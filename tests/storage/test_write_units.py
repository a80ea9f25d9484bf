"""A write unit is one transaction, also when its first statement goes through the bulk path."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.engine import write_records
from loadbay.storage.database import Database
from loadbay.storage.instances import allocate_hrids
from loadbay.storage.tables import activities
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow
from tests.factories import activity


class _Abandon(Exception):
    pass


async def _write(db: Database, count: int, *, abandon: bool) -> None:
    async with db.write() as unit:
        await write_records(
            unit,
            ACTIVITIES,
            "t1",
            [(n, activity(n)) for n in range(count)],
            mode=ConflictMode.FAIL,
            chunk_size=1000,
            now=utcnow(),
        )
        if abandon:
            raise _Abandon


async def test_a_unit_opened_by_a_bulk_write_rolls_back_whole(database_url: str) -> None:
    db = Database(database_url)
    try:
        with pytest.raises(_Abandon):
            await _write(db, 3, abandon=True)
        async with db.read() as conn:
            after_abandon = (await conn.execute(select(func.count()).select_from(activities))).one()
        await _write(db, 2, abandon=False)
        async with db.read() as conn:
            after_commit = (await conn.execute(select(func.count()).select_from(activities))).one()
    finally:
        await db.dispose()

    assert after_abandon == (0,)
    assert after_commit == (2,)


async def test_counters_drawn_in_an_open_unit_do_not_hold_up_other_units(
    database_url: str, backend: str
) -> None:
    """PostgreSQL: hrid numbers come from a connection that commits at once, so a second
    writer draws the next ones while the first unit is still open; a unit that rolls back
    leaves its numbers unused, as a sequence does."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: its units draw inside their transaction")
    db = Database(database_url)
    drawn: list[range] = []

    async def draw_then_abandon() -> None:
        async with db.write() as first:
            async with first.counters() as conn:
                drawn.append(await allocate_hrids(conn, "t-counters", 3))
            async with asyncio.timeout(10), db.write() as second, second.counters() as conn:
                drawn.append(await allocate_hrids(conn, "t-counters", 2))
            raise _Abandon

    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t-counters", "t")
        with pytest.raises(_Abandon):
            await draw_then_abandon()
        async with db.write() as third, third.counters() as conn:
            drawn.append(await allocate_hrids(conn, "t-counters", 1))
    finally:
        await db.dispose()

    assert drawn == [range(1, 4), range(4, 6), range(6, 7)]
