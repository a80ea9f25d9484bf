"""Bulk means bulk: a chunk is one statement, counted on the real driver connection."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from asyncpg.exceptions import StringDataRightTruncationError
from sqlalchemy import event, func, select

from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.engine import prepare_records, write_prepared, write_records
from loadbay.ingest.instances import instances_collection
from loadbay.ingest.operator import OperatorCollections, collections_for
from loadbay.ingest.templates.model import built_in, checked
from loadbay.outcomes import Outcome, RecordResult
from loadbay.storage.bulk import OnConflict
from loadbay.storage.database import Database, WriteUnit
from loadbay.storage.instances import hrid_holders_between
from loadbay.storage.outbox import FeedPosition, feed
from loadbay.storage.postgres import _stored_sql
from loadbay.storage.recent_conflicts import REMEMBERED_SECONDS, RecentConflicts
from loadbay.storage.tables import ORIGIN_INDEX, ORIGIN_JOB, activities, instances
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow
from tests.api.instances.helpers import instance
from tests.factories import activity


def _ours(statement: str) -> bool:
    # asyncpg introspects a new array type once per connection: catalog queries, not ours.
    return "pg_catalog" not in statement and "set_config" not in statement


async def watch_statements(unit: WriteUnit, backend: str) -> list[str]:
    """Every statement our code sends on the unit's driver connection from now on."""
    seen: list[str] = []
    if backend == "sqlite":
        # SQLite reports a statement once more for every row trigger it fires (the event
        # capture): a repeat of the statement just seen is the same statement still running.
        def trace(statement: str) -> None:
            if not seen or seen[-1] != statement:
                seen.append(statement)

        await unit.driver.set_trace_callback(trace)
    else:
        unit.driver.add_query_logger(
            lambda record: seen.append(record.query) if _ours(record.query) else None
        )

        # asyncpg's logger misses SQLAlchemy's statements (prepared, then run): hear those
        # from SQLAlchemy itself.
        def heard(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(statement)

        event.listen(unit.conn.sync_connection, "before_cursor_execute", heard)
    return seen


def inserts_into_activities(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith('INSERT INTO "ACTIVITIES"')]


async def write_activities(
    db: Database, backend: str, records: list[tuple[int, Any]], *, chunk_size: int
) -> tuple[list[str], list[RecordResult]]:
    """Write activities in one unit (tenant t1, failing stored keys); the statements it sent."""
    async with db.write() as unit:
        await ensure_tenant(unit.conn, "t1", "T1")
        statements = await watch_statements(unit, backend)
        results = await write_records(
            unit,
            ACTIVITIES,
            "t1",
            records,
            mode=ConflictMode.FAIL,
            chunk_size=chunk_size,
            now=utcnow(),
        )
    return statements, results


def without_savepoints(statements: list[str]) -> list[str]:
    """PostgreSQL writes rows that may conflict in a savepoint (see the test of that below)."""
    return [s for s in statements if "SAVEPOINT" not in s]


@pytest.mark.parametrize(
    ("mode", "expected"), [(ConflictMode.FAIL, "DO NOTHING"), (ConflictMode.UPDATE, "DO UPDATE")]
)
async def test_a_thousand_records_take_a_bounded_number_of_statements(
    database_url: str, backend: str, mode: ConflictMode, expected: str
) -> None:
    if backend == "postgres":
        expected = "ORDER BY"  # a plain INSERT first: no stored key met lately
    db = Database(database_url)
    records: list[tuple[int, Any]] = [(n, activity(n)) for n in range(1000)]
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
            statements = await watch_statements(unit, backend)
            results = await write_records(
                unit, ACTIVITIES, "t1", records, mode=mode, chunk_size=1000, now=utcnow()
            )
    finally:
        await db.dispose()

    assert all(r.succeeded for r in results)
    inserts = inserts_into_activities(statements)
    # PostgreSQL: one INSERT … SELECT FROM unnest(arrays); SQLite: one 1,000-row multi-VALUES.
    assert len(inserts) == 1
    assert all(expected in s for s in inserts)
    assert len(without_savepoints(statements)) <= 6


async def test_a_transaction_takes_few_savepoints_however_small_its_chunks(
    database_url: str, backend: str
) -> None:
    """Past 64 subtransactions in one transaction PostgreSQL slows every session's snapshots:
    chunks past the 32nd go straight to ON CONFLICT DO NOTHING."""
    db = Database(database_url)
    records = [(n, activity(n)) for n in range(40)]
    try:
        statements, results = await write_activities(db, backend, records, chunk_size=1)
    finally:
        await db.dispose()

    assert all(r.succeeded for r in results)
    savepoints = sum(s.startswith("SAVEPOINT") for s in statements)
    assert savepoints == (32 if backend == "postgres" else 0)
    assert len(inserts_into_activities(statements)) == 40


async def test_a_chunk_meeting_a_stored_key_is_written_again_skipping_stored_keys(
    database_url: str, backend: str
) -> None:
    """PostgreSQL tries a plain INSERT (ON CONFLICT's speculative insertion cost 17-19% of its
    time), in a savepoint; meeting a stored key, it rolls back to it and skips stored keys."""
    db = Database(database_url)
    try:
        await write_activities(db, backend, [(0, activity(2))], chunk_size=1000)
        records = [(n, activity(n)) for n in range(1, 4)]
        statements, results = await write_activities(db, backend, records, chunk_size=1000)
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(activities))).scalar_one()
    finally:
        await db.dispose()

    assert [r.succeeded for r in results] == [True, False, True]
    assert stored == 3
    inserts = inserts_into_activities(statements)
    if backend == "postgres":
        assert ["DO NOTHING" in s for s in inserts] == [False, True]
        assert sum("ROLLBACK TO SAVEPOINT" in s for s in statements) == 1
    else:
        assert ["DO NOTHING" in s for s in inserts] == [True]


async def test_after_meeting_stored_keys_writes_there_skip_the_plain_insert_for_a_while(
    database_url: str, backend: str
) -> None:
    """A failed plain INSERT is work for nothing (9% of a re-load when every batch tried
    one): once a write met stored keys, the next writes to that table and tenant go straight
    to ON CONFLICT; another tenant's still try a plain INSERT first."""
    db = Database(database_url)
    try:
        await write_activities(db, backend, [(0, activity(1))], chunk_size=1000)
        await write_activities(db, backend, [(0, activity(1))], chunk_size=1000)
        watched, results = await write_activities(db, backend, [(0, activity(2))], chunk_size=1000)
        met = [*watched]  # (the connection's logger goes on hearing its next units)
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t2", "T2")
            other = await watch_statements(unit, backend)
            await write_records(
                unit,
                ACTIVITIES,
                "t2",
                [(0, activity(1))],
                mode=ConflictMode.FAIL,
                chunk_size=1000,
                now=utcnow(),
            )
    finally:
        await db.dispose()

    assert [r.succeeded for r in results] == [True]
    (insert,) = inserts_into_activities(met)
    (elsewhere,) = inserts_into_activities(other)
    if backend == "postgres":
        assert "DO NOTHING" in insert
        assert not any("SAVEPOINT" in s for s in met)
        assert "DO NOTHING" not in elsewhere
    else:
        assert "DO NOTHING" in insert
        assert "DO NOTHING" in elsewhere


def test_stored_keys_met_are_remembered_for_a_while_then_forgotten() -> None:
    now = [100.0]
    conflicts = RecentConflicts(clock=lambda: now[0])
    conflicts.met(("activities", "t1"))

    now[0] += REMEMBERED_SECONDS - 0.1
    assert conflicts.expected(("activities", "t1"))
    assert not conflicts.expected(("activities", "t2"))
    now[0] += 0.2
    assert not conflicts.expected(("activities", "t1"))


async def test_instances_go_in_by_a_plain_insert_when_new_and_by_their_id_when_stored(
    database_url: str, backend: str
) -> None:
    """Instances read their stored versions first (locked): on PostgreSQL those not stored
    go in without ON CONFLICT (its speculative insertion is work for nothing there), and
    those stored are updated through the ids the read found (ON CONFLICT would probe their
    key again). A chunk of both takes one statement of each; every record gets its outcome
    and its event, an update's with old and new."""
    collection = instances_collection()
    db = Database(database_url)
    passes = []
    try:
        async with db.write() as unit:
            # Committed first: hrids are numbered on a connection of their own.
            await ensure_tenant(unit.conn, "t1", "T1")
        for numbers in (range(3), range(1, 5)):
            records = [
                (n, instance(n, title=f"pass {len(passes)}", _version=1 if n < 3 else None))
                for n in numbers
            ]
            async with db.write() as unit:
                statements = await watch_statements(unit, backend)
                await unit.bulk.capture_events("job-1", utcnow())
                results = await write_records(
                    unit,
                    collection,
                    "t1",
                    [(i, record) for i, (_, record) in enumerate(records)],
                    mode=ConflictMode.UPDATE,
                    chunk_size=10,
                    now=utcnow(),
                )
            writes = [s for s in statements if 'INTO "instances"' in s or 'UPDATE "instances"' in s]
            passes.append(([r.outcome for r in results], writes))
        async with db.read() as conn:
            events = await feed(conn, "t1", collection=None, after=FeedPosition(0), limit=20)
    finally:
        await db.dispose()

    (created, first), (mixed, second) = passes
    assert created == [Outcome.CREATED] * 3
    assert mixed == [Outcome.UPDATED, Outcome.UPDATED, Outcome.CREATED, Outcome.CREATED]
    assert len(first) == 1
    if backend == "postgres":
        assert "ON CONFLICT" not in first[0]
        (update, insert) = second
        assert update.startswith('UPDATE "instances"')
        assert "ON CONFLICT" not in insert
    else:
        (upsert,) = second
        assert "DO UPDATE" in upsert
    changes = [orjson.loads(e.payload) for e in events]
    seen = sorted(
        (c["type"], c["key"], c.get("old", {}).get("title"), c["new"]["title"]) for c in changes
    )
    assert seen == sorted(
        [("CREATE", instance(n)["id"], None, "pass 0") for n in range(3)]
        + [("UPDATE", instance(n)["id"], "pass 0", "pass 1") for n in (1, 2)]
        + [("CREATE", instance(n)["id"], None, "pass 1") for n in (3, 4)]
    )
    assert {c["new"]["_version"] for c in changes if c["type"] == "UPDATE"} == {2}


@pytest.mark.parametrize("joined", [False, True], ids=["array", "joined"])
async def test_stored_instances_are_read_by_their_key_on_a_table_without_statistics(
    database_url: str, backend: str, joined: bool
) -> None:
    """A first load meets a table never analysed: PostgreSQL must probe the id's key with
    both the tenant and the id, not read every row of the tenant through another index that
    leads with the tenant (2-9 s a chunk, while concurrent chunks wrote)."""
    if backend == "sqlite":
        pytest.skip("SQLite always probes a unique key whose every column is given")
    wanted = ("tenant_id", "instance_id", "version")
    sql = _stored_sql(instances, ("tenant_id",), ("instance_id",), wanted, joined)
    keys = "a\x1fb" if joined else ["a", "b"]
    db = Database(database_url)
    try:
        async with db.write() as unit:
            plan = [row[0] for row in await unit.driver.fetch(f"EXPLAIN {sql}", keys, "t1")]
    finally:
        await db.dispose()

    (scan,) = [line for line in plan if "Scan using" in line]
    assert "uq_instances_tenant_id_instance_id" in scan
    condition = plan[plan.index(scan) + 1]
    assert "tenant_id" in condition
    assert "instance_id" in condition


async def test_a_range_of_assigned_hrids_is_read_through_the_tenants_hrid_key(
    database_url: str, backend: str
) -> None:
    """Every chunk that assigns hrids reads their range: through (tenant, hrid), with both
    as its condition, not every row of the tenant (SQLite ignored a partial index for it)."""
    statements: list[tuple[str, Any]] = []

    def heard(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    db = Database(database_url)
    try:
        async with db.read() as conn:
            event.listen(conn.sync_connection, "before_cursor_execute", heard)
            await hrid_holders_between(conn, "t1", "in00000000001", "in00000002000")
            (statement, parameters), *_ = statements
            explain = "EXPLAIN QUERY PLAN" if backend == "sqlite" else "EXPLAIN"
            plan = [
                str(row[-1])
                for row in await conn.exec_driver_sql(f"{explain} {statement}", parameters)
            ]
    finally:
        await db.dispose()

    (scan,) = [line for line in plan if "uq_instances_tenant_id_hrid" in line]
    condition = scan if backend == "sqlite" else plan[plan.index(scan) + 1]
    assert "tenant_id" in condition
    assert "hrid" in condition


async def test_an_upsert_told_no_key_is_stored_still_updates_a_key_stored_since(
    database_url: str, backend: str
) -> None:
    """A read that found no key stored lets PostgreSQL try a plain INSERT; a writer that
    stored one of the keys since (as another transaction may) gets its update all the same,
    with its event, old and new."""
    entities = igaming().entities
    db = Database(database_url)
    now = utcnow()
    shared = {"tenant_id": "t1", "created_at": now, "version": 1, "updated_at": now}
    rows = [
        entities.validate(
            {"entityType": "player", "externalId": f"p{n}", "data": {"email": f"{n}@x.io"}}
        )
        for n in (0, 1)
    ]
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
            await write_records(
                unit,
                entities,
                "t1",
                [(0, {"entityType": "player", "externalId": "p1", "data": {"email": "old@x.io"}})],
                mode=ConflictMode.UPDATE,
                chunk_size=10,
                now=now,
            )
        async with db.write() as unit:
            statements = await watch_statements(unit, backend)
            await unit.bulk.capture_events("job-1", now)
            written = await unit.bulk.write(
                entities.target, rows, OnConflict.UPDATE, shared, stored_ids=[None, None]
            )
        async with db.read() as conn:
            events = await feed(conn, "t1", collection=None, after=FeedPosition(0), limit=10)
    finally:
        await db.dispose()

    assert [returned[1] if returned else None for returned in written] == [1, 2]
    published = {
        (event["type"], event["key"]): event
        for event in map(orjson.loads, (e.payload for e in events))
        if event["jobId"]
    }
    assert sorted(published) == [("CREATE", "p0"), ("UPDATE", "p1")]
    updated = published[("UPDATE", "p1")]
    assert (updated["old"]["data"], updated["new"]["data"]) == (
        {"email": "old@x.io"},
        {"email": "1@x.io"},
    )
    upserts = [s for s in statements if 'INSERT INTO "entities"' in s]
    if backend == "postgres":
        assert ["DO UPDATE" in s for s in upserts] == [False, True]
        assert sum("ROLLBACK TO SAVEPOINT" in s for s in statements) == 1
    else:
        assert ["DO UPDATE" in s for s in upserts] == [True]


async def test_rows_are_written_in_key_order(database_url: str, backend: str) -> None:
    db = Database(database_url)
    shuffled = [(i, activity(n)) for i, n in enumerate([5, 1, 4, 2, 3])]
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
            results = await write_records(
                unit, ACTIVITIES, "t1", shuffled, mode=ConflictMode.FAIL, chunk_size=2, now=utcnow()
            )
        async with db.read() as conn:
            from sqlalchemy import select

            rows = (await conn.execute(select(activities.c.id, activities.c.mentor_id))).all()
    finally:
        await db.dispose()

    by_id = sorted(rows)
    assert [m for _, m in by_id] == [f"mentor-{n}" for n in (1, 2, 3, 4, 5)]
    assert [r.record_id for r in results] == ["pa-005", "pa-001", "pa-004", "pa-002", "pa-003"]


def igaming() -> OperatorCollections:
    return collections_for(
        orjson.dumps(checked(built_in("igaming")), option=orjson.OPT_SORT_KEYS).decode()
    )


async def test_a_thousand_entities_then_events_are_a_handful_of_statements(
    database_url: str, backend: str
) -> None:
    collections = igaming()
    entities = [
        (n, {"entityType": "player", "externalId": f"p{n}", "data": {"email": f"{n}@x.io"}})
        for n in range(1000)
    ]
    events = [
        (n, {"externalId": f"p{n}", "eventType": "session", "data": {"action": "login"}})
        for n in range(1000)
    ]
    db = Database(database_url)
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
            statements = await watch_statements(unit, backend)
            written = await write_records(
                unit,
                collections.entities,
                "t1",
                entities,
                mode=ConflictMode.UPDATE,
                chunk_size=1000,
                now=utcnow(),
            )
            logged = await write_records(
                unit,
                collections.events,
                "t1",
                events,
                mode=ConflictMode.IGNORE,
                chunk_size=1000,
                now=utcnow(),
            )
    finally:
        await db.dispose()

    assert all(r.succeeded for r in written + logged)
    # (Classified, not counted by position: asyncpg reports a statement after it ran.)
    lookups = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
    writes = {
        table: [q for q in statements if f'"{table}"' in q] for table in ("entities", "events")
    }
    # PostgreSQL: one INSERT … SELECT FROM unnest(arrays); SQLite: one 1,000-row INSERT.
    assert len(writes["entities"]) == 1
    assert len(writes["events"]) == 1
    # One SELECT resolves all 1,000 externalIds to entity ids.
    assert len(lookups) == 1
    assert "entities" in lookups[0]
    others = len(without_savepoints(statements))
    assert others <= len(writes["entities"]) + len(writes["events"]) + 2  # + COMMIT


@pytest.mark.parametrize("counted", [False, True], ids=["results", "counted"])
async def test_parts_of_a_chunk_that_meet_stored_keys_fall_back_to_the_upsert(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch, counted: bool
) -> None:
    """A chunk in several statements whose last parts meet stored keys: the parts a plain
    INSERT wrote and those that fell back to the upsert are each counted as they went."""
    if backend == "sqlite":
        pytest.skip("SQLite splits statements by its parameter limit")
    from loadbay.storage import postgres

    monkeypatch.setattr(postgres, "_MAX_STATEMENT_TEXT", 600)
    collections = igaming()

    def player(n: int, email: str) -> dict[str, Any]:
        return {"entityType": "player", "externalId": f"p{n:03d}", "data": {"email": email}}

    db = Database(database_url)
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
        outcomes = []
        # Then 60 new players (plain INSERTs go through) and the 30 stored (they fall back).
        for numbers in (range(60, 90), range(90)):
            records = [(n, player(n, f"{n}@x.io")) for n in numbers]
            prepared = prepare_records(
                collections.entities, "t1", records, mode=ConflictMode.UPDATE, now=utcnow()
            )
            async with db.write() as unit:
                statements = await watch_statements(unit, backend)
                results = await write_prepared(
                    unit,
                    collections.entities,
                    "t1",
                    prepared,
                    chunk_size=1000,
                    count_successes=counted,
                )
            written = Counter(r.outcome for r in results) + Counter(prepared.succeeded)
            outcomes.append(dict(written))
    finally:
        await db.dispose()

    assert outcomes == [{Outcome.CREATED: 30}, {Outcome.CREATED: 60, Outcome.UPDATED: 30}]
    fell_back = [s for s in statements if "ROLLBACK TO SAVEPOINT" in s]
    assert fell_back  # at least one part met a stored key


async def test_chunks_of_one_transaction_each_write_only_their_own_rows(
    database_url: str,
) -> None:
    """Several chunks in one transaction: each writes its own rows, none an earlier chunk's."""
    db = Database(database_url)
    first = [(n, activity(n)) for n in range(2500)]
    again = [(n, activity(n, duration_minutes=45)) for n in range(1200)]
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
            created = await write_records(
                unit, ACTIVITIES, "t1", first, mode=ConflictMode.FAIL, chunk_size=1000, now=utcnow()
            )
            updated = await write_records(
                unit,
                ACTIVITIES,
                "t1",
                again,
                mode=ConflictMode.UPDATE,
                chunk_size=500,
                now=utcnow(),
            )
        async with db.read() as conn:
            durations = (
                await conn.execute(
                    select(activities.c.duration_minutes, func.count()).group_by(
                        activities.c.duration_minutes
                    )
                )
            ).all()
    finally:
        await db.dispose()

    assert [r.outcome.value for r in created] == ["created"] * 2500
    assert [r.outcome.value for r in updated] == ["updated"] * 1200
    assert len({r.record_id for r in created}) == 2500
    assert [r.record_id for r in updated] == [r.record_id for r in created[:1200]]
    assert dict(durations) == {45: 1200, 120: 1300}


async def test_stored_rows_are_found_by_keys_of_several_columns(database_url: str) -> None:
    """Keys whose date varies and whose tenant does not; stored values come back decoded."""
    db = Database(database_url)
    day = date(2026, 3, 28)
    stored = [
        (n, activity(n, activity_date=(day + timedelta(days=n)).isoformat())) for n in range(3)
    ]
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
            await write_records(
                unit, ACTIVITIES, "t1", stored, mode=ConflictMode.FAIL, chunk_size=10, now=utcnow()
            )
        async with db.write() as unit:
            # Sorted, as the engine gives them.
            keys = [
                ("t1", "mentor-0", "group_workshop", day),
                ("t1", "mentor-1", "group_workshop", day),  # stored under another day
                ("t1", "mentor-2", "group_workshop", day + timedelta(days=2)),
            ]
            columns = ("tenant_id", "mentor_id", "activity_type", "activity_date")
            found = await unit.bulk.stored_rows(
                activities, columns, keys, ("duration_minutes", "created_at")
            )
            one = await unit.bulk.stored_rows(activities, columns, keys[:1], ("version",))
    finally:
        await db.dispose()

    assert list(found) == [keys[0], keys[2]]  # those stored, in the order given
    assert found[keys[2]]["duration_minutes"] == 120
    assert found[keys[2]]["activity_date"] == day + timedelta(days=2)
    assert found[keys[2]]["created_at"].tzinfo is not None
    assert list(one) == [keys[0]]
    # PostgreSQL's rows are the driver's own, mappings by column name.
    assert {name: one[keys[0]][name] for name in (*columns, "version")} == {
        **dict(zip(columns, keys[0], strict=True)),
        "version": 1,
    }


async def test_stored_json_comes_back_as_the_text_stored(database_url: str) -> None:
    """JSON columns are left for their reader to decode (instances decode the document)."""
    db = Database(database_url)
    record = instance(1, title="Stored \u00e9")
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
        async with db.write() as unit:
            await write_records(
                unit,
                instances_collection("in"),
                "t1",
                [(0, record)],
                mode=ConflictMode.UPDATE,
                chunk_size=10,
                now=utcnow(),
            )
        async with db.write() as unit:
            key = ("t1", record["id"])
            found = await unit.bulk.stored_rows(
                instances, ("tenant_id", "instance_id"), [key], ("document", "version")
            )
    finally:
        await db.dispose()

    document = found[key]["document"]
    assert isinstance(document, str)
    assert orjson.loads(document)["title"] == "Stored \u00e9"
    assert found[key]["version"] == 1


async def test_a_value_too_long_for_its_column_is_refused_not_cut(
    database_url: str, backend: str
) -> None:
    """PostgreSQL: the database backs up the validators' lengths; two keys that share their
    first 255 characters must not merge into one row."""
    if backend == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths; the validators do")
    db = Database(database_url)
    rows = [
        {**activity(0), "mentor_id": "m" * length, "activity_date": date(2026, 3, 28)}
        for length in (300, 256)
    ]
    for position, row in enumerate(rows):
        row[ORIGIN_INDEX] = position
    now = utcnow()
    shared = {"tenant_id": "t1", "created_at": now, "version": 1, "updated_at": now}
    shared[ORIGIN_JOB] = None
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
        with pytest.raises(StringDataRightTruncationError):
            async with db.write() as unit:
                await unit.bulk.write(ACTIVITIES.target, rows, OnConflict.NOTHING, shared)
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(activities))).scalar()
    finally:
        await db.dispose()

    assert stored == 0


async def test_a_chunk_too_large_for_one_message_goes_in_several_statements(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL caps a message at 1 GB: past a size, a chunk is written in consecutive
    parts, and every record still gets its own result."""
    if backend == "sqlite":
        pytest.skip("SQLite splits statements by its parameter limit")
    from loadbay.storage import postgres

    monkeypatch.setattr(postgres, "_MAX_STATEMENT_TEXT", 2_000)
    db = Database(database_url)
    records: list[tuple[int, Any]] = [(n, activity(n)) for n in range(100)]
    try:
        statements, results = await write_activities(db, backend, records, chunk_size=100)
        async with db.read() as conn:
            mentors = (await conn.execute(select(activities.c.mentor_id))).scalars().all()
    finally:
        await db.dispose()

    assert len(inserts_into_activities(statements)) > 1
    assert [r.outcome.value for r in results] == ["created"] * 100
    assert len({r.record_id for r in results}) == 100
    assert sorted(mentors) == sorted(f"mentor-{n}" for n in range(100))


@pytest.mark.parametrize("counted", [False, True], ids=["results", "counted"])
async def test_stored_and_new_instances_too_large_for_one_message_go_in_several_statements(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch, counted: bool
) -> None:
    """The update of stored instances by id and the insert of new ones are each split into
    consecutive parts past a size: each record keeps its own outcome and values. Writes
    that only count their successes (file jobs, operator batches) count them right, and
    their plain INSERTs return nothing."""
    if backend == "sqlite":
        pytest.skip("SQLite splits statements by its parameter limit")
    from loadbay.storage import postgres

    monkeypatch.setattr(postgres, "_MAX_STATEMENT_TEXT", 2_000)
    collection = instances_collection()
    db = Database(database_url)
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "T1")
        outcomes, statements = [], []
        for title, numbers in (("first", range(40)), ("second", range(60))):
            records = [(n, instance(n, title=f"{title} {n}", _version=1)) for n in numbers]
            prepared = prepare_records(
                collection, "t1", records, mode=ConflictMode.UPDATE, now=utcnow()
            )
            async with db.write() as unit:
                statements = await watch_statements(unit, backend)
                results = await write_prepared(
                    unit, collection, "t1", prepared, chunk_size=100, count_successes=counted
                )
            if counted:
                assert results == []  # no failure
                outcomes.append(dict(prepared.succeeded))
            else:
                outcomes.append([r.outcome for r in results])
        async with db.read() as conn:
            stored = (
                await conn.execute(select(instances.c.instance_id, instances.c.version))
            ).all()
            titles = (await conn.execute(select(instances.c.document))).scalars().all()
    finally:
        await db.dispose()

    updates = [s for s in statements if s.startswith('UPDATE "instances"')]
    inserts = [s for s in statements if 'INTO "instances"' in s]
    assert len(updates) > 1
    assert len(inserts) > 1
    if counted:
        assert outcomes == [{Outcome.CREATED: 40}, {Outcome.UPDATED: 40, Outcome.CREATED: 20}]
        assert not any("RETURNING" in s for s in inserts)
    else:
        created, updated = Outcome.CREATED, Outcome.UPDATED
        assert outcomes == [[created] * 40, [updated] * 40 + [created] * 20]
    versions = {instance_id: version for instance_id, version in stored}
    assert versions == {instance(n)["id"]: 2 if n < 40 else 1 for n in range(60)}
    assert sorted(t["title"] for t in titles) == sorted(f"second {n}" for n in range(60))
