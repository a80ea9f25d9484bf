"""A write unit is one transaction, also when its first statement goes through the bulk path."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.engine import write_records
from loadbay.storage.database import Database
from loadbay.storage.tables import activities
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
