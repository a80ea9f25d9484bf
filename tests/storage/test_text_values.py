"""Text values reach the database as sent, whatever characters they hold.

PostgreSQL's bulk statements send a text column's values joined by a control character
(`storage.postgres._parameters`); values holding one, and values that would split into
something else, must go another way and still arrive whole.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from asyncpg.exceptions import DataError, NotNullViolationError
from sqlalchemy import select

from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.engine import write_records
from loadbay.ingest.instances import instances_collection
from loadbay.outcomes import Outcome
from loadbay.storage.bulk import OnConflict
from loadbay.storage.database import Database
from loadbay.storage.tables import ORIGIN_INDEX, ORIGIN_JOB, activities, instances
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow
from tests.api.instances.helpers import iid, instance
from tests.factories import activity
from tests.storage.test_bulk_statements import inserts_into_activities, watch_statements

# The separator and NULL marker of the joined form, and text around them.
AWKWARD = ["a\x1fb", "\x1f", "\x1e", "x\x1ey\x1fz", "", "plain"]
NOW = utcnow()
SHARED = {"tenant_id": "t1", "created_at": NOW, "version": 1, "updated_at": NOW, ORIGIN_JOB: None}


def _activity_row(position: int, coordinator: str, mentor: str) -> dict[str, Any]:
    row = {**activity(position), "coordinator_id": coordinator, "mentor_id": mentor}
    row["activity_date"] = date(2026, 3, 28)
    row[ORIGIN_INDEX] = position
    return row


@pytest.mark.parametrize(
    "coordinators",
    [AWKWARD, ["plain", ""], [""], ["\x1f"], ["a", "\x1e"], ["only"]],
    ids=["awkward", "with-empty", "lone-empty", "lone-separator", "null-marker", "lone-plain"],
)
async def test_text_values_are_written_and_found_again_as_sent(
    database_url: str, coordinators: list[str]
) -> None:
    """Written, then written again through their keys (the stored read and the upsert):
    every row keeps its own values, empty and control characters included."""
    shared = SHARED
    mentors = [f"{value}-mentor-{n}" for n, value in enumerate(coordinators)]
    rows = [
        _activity_row(n, c, m) for n, (c, m) in enumerate(zip(coordinators, mentors, strict=True))
    ]
    db = Database(database_url)
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
            await unit.bulk.write(ACTIVITIES.target, rows, OnConflict.NOTHING, shared)
        async with db.write() as unit:
            keys = [("t1", m, "group_workshop", date(2026, 3, 28)) for m in mentors]
            columns = ("tenant_id", "mentor_id", "activity_type", "activity_date")
            found = await unit.bulk.stored_rows(activities, columns, keys, ("coordinator_id",))
            again = await unit.bulk.write(ACTIVITIES.target, rows, OnConflict.NOTHING, shared)
        async with db.read() as conn:
            query = select(activities.c.mentor_id, activities.c.coordinator_id)
            stored = {
                mentor: coordinator for mentor, coordinator in (await conn.execute(query)).all()
            }
    finally:
        await db.dispose()

    assert stored == dict(zip(mentors, coordinators, strict=True))
    assert {key[1]: row["coordinator_id"] for key, row in found.items()} == stored
    assert again == [None] * len(rows)  # each met its stored key


@pytest.mark.parametrize(
    "match_keys",
    [[None, "k1", None, "k2", "k3", None], [None, "k\x1f1", None, "k\x1e2", "k3", None]],
    ids=["plain", "awkward"],
)
async def test_absent_and_awkward_match_keys_are_stored_as_sent_then_updated(
    database_url: str, match_keys: list[str | None]
) -> None:
    """A nullable text column: NULLs beside plain values (the joined form) and beside values
    holding its characters (arrays), through a first load and a re-load that updates the
    stored rows by id."""
    collection = instances_collection()
    db = Database(database_url)
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
        outcomes = []
        for title, version in (("first", None), ("second", 1)):
            records = [
                (n, instance(n, title=f"{title} {n}", matchKey=key, _version=version))
                for n, key in enumerate(match_keys)
            ]
            async with db.write() as unit:
                results = await write_records(
                    unit,
                    collection,
                    "t1",
                    records,
                    mode=ConflictMode.UPDATE,
                    chunk_size=100,
                    now=utcnow(),
                )
            outcomes.append({r.outcome for r in results})
        async with db.read() as conn:
            query = select(instances.c.instance_id, instances.c.match_key, instances.c.version)
            stored = {row[0]: row[1:] for row in (await conn.execute(query)).all()}
    finally:
        await db.dispose()

    assert outcomes == [{Outcome.CREATED}, {Outcome.UPDATED}]
    assert stored == {iid(n): (key, 2) for n, key in enumerate(match_keys)}


@pytest.mark.parametrize(
    ("coordinators", "joined"),
    [(["plain", "", "text"], True), (["plain", "a\x1fb"], False), (["a", "\x1e"], False)],
    ids=["plain", "separator", "null-marker"],
)
async def test_text_columns_go_joined_unless_a_value_holds_a_separator(
    database_url: str, backend: str, coordinators: list[str], joined: bool
) -> None:
    """PostgreSQL: one text a column, split by `string_to_array`, or one array a column."""
    if backend == "sqlite":
        pytest.skip("SQLite binds each value")
    rows = [_activity_row(n, c, f"mentor-{n}") for n, c in enumerate(coordinators)]
    db = Database(database_url)
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
            statements = await watch_statements(unit, backend)
            await unit.bulk.write(ACTIVITIES.target, rows, OnConflict.NOTHING, SHARED)
    finally:
        await db.dispose()

    (insert,) = inserts_into_activities(statements)
    assert ("string_to_array" in insert) is joined
    assert ("::VARCHAR[]" in insert) is not joined


@pytest.mark.parametrize(
    ("coordinator", "error"),
    [(None, NotNullViolationError), (42, DataError)],
    ids=["none-in-not-null", "not-text"],
)
async def test_a_value_the_column_cannot_take_is_refused_by_the_database(
    database_url: str, backend: str, coordinator: Any, error: type[Exception]
) -> None:
    """PostgreSQL's own refusal, naming the column or the parameter, as with arrays."""
    if backend == "sqlite":
        pytest.skip("SQLite's types are its own")
    row = _activity_row(0, coordinator, "mentor-0")
    db = Database(database_url)
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
        with pytest.raises(error):
            async with db.write() as unit:
                await unit.bulk.write(ACTIVITIES.target, [row], OnConflict.NOTHING, SHARED)
    finally:
        await db.dispose()
