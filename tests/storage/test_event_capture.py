"""The capture triggers describe each collection as the engine does: names, keys, public ids;
and stamp each event with its write's job and time."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select

from loadbay.domain_events.outbox import EventContext
from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import Collection, ConflictMode
from loadbay.ingest.engine import write_records
from loadbay.ingest.instances import instances_collection
from loadbay.ingest.operator import collections_for
from loadbay.ingest.templates.model import built_in, checked
from loadbay.storage.database import Database
from loadbay.storage.event_capture import CAPTURED
from loadbay.storage.sqlite import SqliteBulkWriter
from loadbay.storage.tables import outbox
from tests.factories import activity


def _engine_collections() -> list[Collection]:
    operator = collections_for(orjson.dumps(checked(built_in("igaming"))).decode())
    return [
        ACTIVITIES,
        operator.entities,
        operator.events,
        operator.states,
        instances_collection(),
    ]


@pytest.mark.parametrize("collection", _engine_collections(), ids=lambda c: c.name)
def test_each_collection_is_captured_as_the_engine_describes_it(collection: Collection) -> None:
    (captured,) = [c for c in CAPTURED if c.collection == collection.name]

    assert captured.table is collection.target.table
    assert captured.key == collection.key
    assert captured.id_prefix + "0" * (captured.id_width - 1) + "7" == collection.ids.format(7)


async def test_a_context_row_without_its_formatted_values_still_stamps_job_and_time(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer of revision 0019 (during a rolling upgrade, say) fills only the context's
    older columns: SQLite's triggers format the job and the time themselves then."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL keeps the write's context in settings")
    written_by_earlier_writer = SqliteBulkWriter.capture_events

    async def earlier_writer(self: SqliteBulkWriter, job_ref: str | None, at: datetime) -> None:
        await written_by_earlier_writer(self, job_ref, at)
        await self._conn.execute("UPDATE capture_context SET job_json = NULL, at_json = NULL")

    monkeypatch.setattr(SqliteBulkWriter, "capture_events", earlier_writer)
    db = Database(database_url)
    now = datetime(2026, 11, 28, 7, 30, 0, 250000, tzinfo=UTC)
    try:
        async with db.write() as unit:
            await write_records(
                unit,
                ACTIVITIES,
                "t1",
                [(0, activity(0))],
                mode=ConflictMode.FAIL,
                chunk_size=1000,
                now=now,
                events=EventContext(job_ref="job-00c"),
            )
        async with db.read() as conn:
            (payloads,) = (await conn.execute(select(outbox.c.payloads))).one()
    finally:
        await db.dispose()

    event = orjson.loads(payloads)
    assert event["jobId"] == "job-00c"
    assert event["new"]["created_at"] == event["new"]["updated_at"] == now.isoformat()
