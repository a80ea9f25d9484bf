"""A write unit is one transaction, also when its first statement goes through the bulk path."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from loadbay.events.outbox import deletion_row
from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.engine import write_records
from loadbay.storage import outbox as outbox_store
from loadbay.storage.database import Database
from loadbay.storage.tables import activities, outbox
from loadbay.storage.types import utcnow
from tests.factories import activity


class _Abandon(Exception):
    pass


async def _count(db: Database, table: object) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _write_then_abandon(db: Database, row: dict[str, object]) -> None:
    async with db.write() as unit:
        await outbox_store.add_events(unit, [row])
        await write_records(
            unit,
            ACTIVITIES,
            "t1",
            [(0, activity(0))],
            mode=ConflictMode.FAIL,
            chunk_size=1000,
            now=utcnow(),
        )
        raise _Abandon


async def test_a_unit_opened_by_a_bulk_insert_rolls_back_whole(database_url: str) -> None:
    db = Database(database_url)
    row = deletion_row(collection="entities", tenant_id="t1", key="k", old={}, now=utcnow())
    try:
        with pytest.raises(_Abandon):
            await _write_then_abandon(db, row)
        assert await _count(db, outbox) == 0
        assert await _count(db, activities) == 0

        async with db.write() as unit:
            await outbox_store.add_events(unit, [row])
        assert await _count(db, outbox) == 1
    finally:
        await db.dispose()
