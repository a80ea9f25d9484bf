"""The migrations build exactly the schema the code declares, and undo it."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, String, inspect, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage import migrate, schema_revision
from loadbay.storage.database import Database
from loadbay.storage.tables import metadata


def differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            assert await conn.run_sync(differences) == []
        assert await schema_revision.current_revision(db) == schema_revision.HEAD
    finally:
        await db.dispose()


async def test_migrated_text_columns_have_the_declared_collations(
    database_url: str, backend: str
) -> None:
    """Alembic's comparison overlooks collations: key columns compare byte by byte (0019)."""
    if backend == "sqlite":
        pytest.skip("SQLite compares all text byte by byte; its columns declare no collation")
    declared = {
        (table.name, column.name): column.type.dialect_impl(postgresql.dialect()).collation
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, String)
    }
    db = Database(database_url)
    try:
        migrated = await _collations(db)
        await migrate.downgrade(db, "0018")
        before = await _collations(db)
        await migrate.upgrade(db)
    finally:
        await db.dispose()

    assert migrated == {key: declared.get(key) for key in migrated}
    assert sum(collation == "C" for collation in migrated.values()) == 17
    assert set(before.values()) == {None}


async def _collations(db: Database) -> dict[tuple[str, str], str | None]:
    query = (
        "SELECT table_name, column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type IN ('character varying', 'text')"
        " AND table_name <> 'alembic_version'"
    )
    async with db.read() as conn:
        return {(t, c): collation for t, c, collation in await conn.exec_driver_sql(query)}


def test_the_head_revision_known_without_alembic_is_alembics_own() -> None:
    assert migrate.head_revision() == schema_revision.HEAD


async def test_downgrade_to_base_and_back(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "base")
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        assert await schema_revision.current_revision(db) is None
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await db.dispose()


async def test_upgrading_a_database_with_data_keeps_every_row(database_url: str) -> None:
    """0005 rebuilds tables on SQLite; nothing that references them may go with the rebuild."""
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "0004")
        async with db.engine.begin() as conn:
            for statement in (
                "INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', CURRENT_TIMESTAMP)",
                "INSERT INTO entities (tenant_id, external_id, entity_type, data, version,"
                " created_at, updated_at) VALUES ('t', 'p1', 'player', '{}', 1,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                "INSERT INTO events (tenant_id, event_id, entity_id, external_id, event_type,"
                " data, created_at, position) SELECT 't', 'e1', id, 'p1', 'deposit', '{}',"
                " CURRENT_TIMESTAMP, 0 FROM entities",
                "INSERT INTO states (tenant_id, entity_id, external_id, state_key, value,"
                " version, created_at, updated_at) SELECT 't', id, 'p1', 'kyc', '1', 1,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM entities",
            ):
                await conn.exec_driver_sql(statement)

        await migrate.upgrade(db)

        async with db.engine.connect() as conn:
            counts = [
                (await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("entities", "events", "states")
            ]
            assert await conn.run_sync(differences) == []
        assert counts == [1, 1, 1]
    finally:
        await db.dispose()


async def test_titles_kept_inside_instance_documents_become_links(database_url: str) -> None:
    """0008: documents written before it held their titles; they move to the links table."""
    document = {
        "id": "00000000-0000-4000-8000-000000000002",
        "title": "Uprooted",
        "precedingTitles": [
            {"title": "Houston oil directory"},
            {"precedingInstanceId": "00000000-0000-4000-8000-000000000001", "title": "T1"},
        ],
        "succeedingTitles": [{"title": "Later", "identifiers": [{"value": "9"}]}],
        "parentInstances": [],
        "isBoundWith": False,
    }
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "0007")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO instances (tenant_id, instance_id, hrid, document, version,"
                    " created_at, updated_at) VALUES ('t', :id, 'in1', :doc, 3,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": document["id"], "doc": json.dumps(document)},
            )
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            (stored,) = (await conn.execute(text("SELECT document FROM instances"))).scalars()
            links = (
                await conn.execute(
                    text(
                        "SELECT owner_instance_id, preceding_instance_id, succeeding_instance_id,"
                        " title, identifiers FROM instance_title_links ORDER BY id"
                    )
                )
            ).all()
    finally:
        await db.dispose()

    assert json.loads(stored) == {"id": document["id"], "title": "Uprooted"}
    me, other = document["id"], "00000000-0000-4000-8000-000000000001"
    assert [tuple(link) for link in links] == [
        (me, None, me, "Houston oil directory", None),
        (me, other, me, "T1", None),
        (me, me, None, "Later", '[{"value": "9"}]'),
    ]


async def test_events_unpublished_before_0010_stay_pending_after_it(database_url: str) -> None:
    """0010: the pending list is made of the events that had no `published_at`."""
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "0009")
        async with db.engine.begin() as conn:
            for n, published in ((1, "CURRENT_TIMESTAMP"), (2, "NULL"), (3, "NULL")):
                await conn.exec_driver_sql(
                    "INSERT INTO outbox (tenant_id, collection, record_key, event_id, event_type,"
                    f" payload, created_at, published_at) VALUES ('t', 'entities', 'p{n}',"
                    f" 'e{n}', 'CREATE', '{{}}', CURRENT_TIMESTAMP, {published})"
                )

        await migrate.upgrade(db, "0010")
        async with db.engine.connect() as conn:
            pending = (
                await conn.exec_driver_sql(
                    "SELECT o.event_id FROM outbox_pending p JOIN outbox o ON o.id = p.id"
                    " ORDER BY o.id"
                )
            ).all()
        await migrate.downgrade(db, "0009")
        async with db.engine.connect() as conn:
            unpublished = (
                await conn.exec_driver_sql(
                    "SELECT event_id FROM outbox WHERE published_at IS NULL ORDER BY id"
                )
            ).all()
        await migrate.upgrade(db)
    finally:
        await db.dispose()

    assert pending == [("e2",), ("e3",)]
    assert unpublished == [("e2",), ("e3",)]


async def test_0010_hands_out_no_outbox_id_twice(database_url: str) -> None:
    """SQLite rebuilds the outbox in 0010: its AUTOINCREMENT counter must survive, also past
    events already pruned (the feed's cursors are ids)."""
    insert_event = (
        "INSERT INTO outbox (tenant_id, collection, record_key, event_id, event_type, payload,"
        " created_at) VALUES ('t', 'entities', 'k', 'e', 'CREATE', '{}', CURRENT_TIMESTAMP)"
    )
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "0009")
        async with db.engine.begin() as conn:
            highest = await _insert_then_drop_newest(conn, "outbox", [insert_event] * 3, keep=1)
        await migrate.upgrade(db, "0014")  # the last revision with a row per event
        async with db.engine.begin() as conn:
            after_upgrade = await _insert_then_drop_newest(conn, "outbox", [insert_event], keep=1)
        await migrate.downgrade(db, "0009")
        async with db.engine.begin() as conn:
            after_downgrade = await _insert_then_drop_newest(conn, "outbox", [insert_event])
        await migrate.upgrade(db)
    finally:
        await db.dispose()

    assert after_upgrade == highest + 1
    assert after_downgrade == highest + 2


async def test_0013_starts_the_relay_below_the_first_event_still_listed(
    database_url: str,
) -> None:
    """0013: the relay's position goes just below the first pending id that names an event
    (an event published above it, out of order, goes out once more); with none pending, at
    the last event. A downgrade lists again every event above the position."""
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "0012")
        async with db.engine.begin() as conn:
            ids = []
            for n in range(4):
                found = await conn.exec_driver_sql(
                    "INSERT INTO outbox (tenant_id, collection, record_key, event_id, event_type,"
                    f" payload, created_at) VALUES ('t', 'entities', 'p{n}', 'e{n}', 'CREATE',"
                    " '{}', CURRENT_TIMESTAMP) RETURNING id"
                )
                ids.append(found.scalar_one())
            await conn.exec_driver_sql(
                f"INSERT INTO outbox_pending (id) VALUES (-5), ({ids[1]}), ({ids[3]})"
            )
        await migrate.upgrade(db)
        async with db.engine.begin() as conn:
            position = await _relay_position(conn)
        await migrate.downgrade(db, "0012")
        async with db.engine.begin() as conn:
            listed = (await conn.exec_driver_sql("SELECT id FROM outbox_pending ORDER BY id")).all()
            await conn.exec_driver_sql("DELETE FROM outbox_pending")
        await migrate.upgrade(db)
        async with db.engine.begin() as conn:
            none_pending = await _relay_position(conn)
    finally:
        await db.dispose()

    assert position == ids[0]
    assert listed == [(ids[1],), (ids[2],), (ids[3],)]
    assert none_pending == ids[3]


async def test_0014_names_stored_record_errors_by_meaning_and_back(database_url: str) -> None:
    """0014: each batch kind's stored codes become Loadbay's names, the operator API's one
    VALIDATION_FAILED split by its messages; a downgrade gives each kind its codes back."""
    stored = [
        ("batch_insert", "validation_error", "bad"),
        ("batch_insert", "unique_constraint_violation", "taken"),
        ("operator", "VALIDATION_FAILED", "Missing field"),
        ("operator", "VALIDATION_FAILED", "an event with this eventId exists"),
        ("operator", "ENTITY_NOT_FOUND", "no entity with this externalId exists"),
        ("operator", "UNKNOWN_EVENT_TYPE", "Unknown event type"),
    ]
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "0013")
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO tenants (id, name, created_at) VALUES ('m14', 'm', CURRENT_TIMESTAMP)"
            )
            for n, (kind, code, message) in enumerate(stored):
                job = await conn.exec_driver_sql(
                    "INSERT INTO jobs (tenant_id, kind, collection, status, record_count,"
                    " succeeded_count, failed_count, created_at, updated_at) VALUES"
                    f" ('m14', '{kind}', 'c', 'completed', 1, 0, 1, CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP) RETURNING id"
                )
                await conn.exec_driver_sql(
                    "INSERT INTO job_results (job_id, idx, status, error, message) VALUES"
                    f" ({job.scalar_one()}, {n}, 'failed', '{code}', '{message}')"
                )
        await migrate.upgrade(db)
        async with db.engine.begin() as conn:
            named = await _stored_errors(conn)
        await migrate.downgrade(db, "0013")
        async with db.engine.begin() as conn:
            back = await _stored_errors(conn)
            await conn.exec_driver_sql(
                "DELETE FROM job_results WHERE job_id IN"
                " (SELECT id FROM jobs WHERE tenant_id = 'm14')"
            )
            await conn.exec_driver_sql("DELETE FROM jobs WHERE tenant_id = 'm14'")
            await conn.exec_driver_sql("DELETE FROM tenants WHERE id = 'm14'")
        await migrate.upgrade(db)
    finally:
        await db.dispose()

    assert named == [
        "invalid",
        "duplicate",
        "invalid",
        "duplicate",
        "reference_not_found",
        "unknown_event_type",
    ]
    assert back == [code for _, code, _ in stored]


async def _stored_errors(conn: AsyncConnection) -> list[str]:
    found = await conn.exec_driver_sql("SELECT error FROM job_results ORDER BY idx")
    return [error for (error,) in found.all()]


async def test_0015_keeps_every_event_in_its_place(database_url: str) -> None:
    """0015: each event becomes a row of one, keeping its id (feed cursors and the relay's
    position name it). A downgrade gives every event of a row its own row again, in order,
    and the relay's position follows the last event of the last row it had published."""
    old_event = (
        "INSERT INTO outbox (tenant_id, collection, record_key, event_id, event_type, payload,"
        " created_at) VALUES ('t', 'entities', 'k{0}', 'e{0}', 'CREATE', '{{\"n\":{0}}}',"
        " CURRENT_TIMESTAMP) RETURNING id"
    )
    db = Database(database_url)
    postgres = db.engine.dialect.name == "postgresql"
    try:
        await migrate.downgrade(db, "0014")
        async with db.engine.begin() as conn:
            ids = [(await conn.exec_driver_sql(old_event.format(n))).scalar_one() for n in (0, 1)]
        await migrate.upgrade(db)
        async with db.engine.begin() as conn:
            upgraded = (
                await conn.exec_driver_sql(
                    "SELECT id, event_count, record_keys, event_ids, payloads FROM outbox"
                    " ORDER BY id"
                )
            ).all()
            if postgres:  # only its capture writes rows of several events
                await conn.exec_driver_sql(
                    "INSERT INTO outbox (tenant_id, collection, event_type, event_count,"
                    " record_keys, event_ids, payloads, created_at) VALUES ('t', 'entities',"
                    ' \'CREATE\', 3, \'["k2","k3","k4"]\', \'["e2","e3","e4"]\','
                    " '{\"n\":2}' || chr(10) || '{\"n\":3}' || chr(10) || '{\"n\":4}',"
                    " CURRENT_TIMESTAMP)"
                )
                await conn.exec_driver_sql(
                    "INSERT INTO relay_position (id, published_through) SELECT 1, max(id)"
                    " FROM outbox ON CONFLICT (id) DO UPDATE SET"
                    " published_through = EXCLUDED.published_through"
                )
            await conn.exec_driver_sql(
                "INSERT INTO outbox (tenant_id, collection, event_type, event_count, record_keys,"
                " event_ids, payloads, created_at) VALUES ('t', 'entities', 'CREATE', 1,"
                " '[\"k5\"]', '[\"e5\"]', '{\"n\":5}', CURRENT_TIMESTAMP)"
            )
        await migrate.downgrade(db, "0014")
        async with db.engine.begin() as conn:
            downgraded = (
                await conn.exec_driver_sql(
                    "SELECT id, record_key, event_id, payload FROM outbox ORDER BY id"
                )
            ).all()
            position = await _relay_position(conn) if postgres else None
        await migrate.upgrade(db)
    finally:
        await db.dispose()

    assert upgraded == [
        (ids[0], 1, '["k0"]', '["e0"]', '{"n":0}'),
        (ids[1], 1, '["k1"]', '["e1"]', '{"n":1}'),
    ]
    numbers = [0, 1, 2, 3, 4, 5] if postgres else [0, 1, 5]
    assert [(key, event_id, payload) for _, key, event_id, payload in downgraded] == [
        (f"k{n}", f"e{n}", f'{{"n":{n}}}') for n in numbers
    ]
    assert [row_id for row_id, *_ in downgraded] == sorted({row[0] for row in downgraded})
    if postgres:
        assert position == downgraded[4][0]


async def _relay_position(conn: AsyncConnection) -> int:
    found = await conn.exec_driver_sql("SELECT published_through FROM relay_position")
    return int(found.scalar_one())


async def test_0005_hands_out_no_entity_id_twice(database_url: str) -> None:
    """0005 rebuilds every table written in bulk on SQLite: their counters must survive."""
    insert_entity = (
        "INSERT INTO entities (tenant_id, external_id, entity_type, data, version, created_at,"
        " updated_at) VALUES ('t', 'p{n}', 'player', '{{}}', 1, CURRENT_TIMESTAMP,"
        " CURRENT_TIMESTAMP)"
    )
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "0004")
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', CURRENT_TIMESTAMP)"
            )
            inserts = [insert_entity.format(n=n) for n in range(3)]
            highest = await _insert_then_drop_newest(conn, "entities", inserts, keep=1)
        await migrate.upgrade(db)
        async with db.engine.begin() as conn:
            after = await _insert_then_drop_newest(conn, "entities", [insert_entity.format(n=9)])
    finally:
        await db.dispose()

    assert after == highest + 1


async def test_0011_lists_the_chunks_an_unfinished_file_job_committed(database_url: str) -> None:
    """0011: a processing job's checkpoint becomes the chunks it covered, a short last one
    included; a downgrade goes back to the lines before the first chunk missing."""
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "0010")
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO tenants (id, name, created_at) VALUES ('m11', 'm', CURRENT_TIMESTAMP)"
            )
            jobs = ((901, "processing", 3000), (902, "completed", 500), (903, "processing", 2500))
            for job_id, status, lines_done in jobs:
                await conn.exec_driver_sql(
                    "INSERT INTO jobs (id, tenant_id, kind, collection, status, record_count,"
                    " succeeded_count, failed_count, created_at, updated_at) VALUES"
                    f" ({job_id}, 'm11', 'instances_bulk', 'instances', '{status}', 0, 0, 0,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
                await conn.exec_driver_sql(
                    "INSERT INTO file_jobs (job_id, records_file, publish_events, chunk_lines,"
                    f" lines_done, errors_count) VALUES ({job_id}, 'f', false, 1000,"
                    f" {lines_done}, 0)"
                )

        await migrate.upgrade(db)
        async with db.engine.begin() as conn:
            listed = (
                await conn.exec_driver_sql(
                    "SELECT job_id, chunk FROM file_job_chunks WHERE job_id IN (901, 902, 903)"
                    " ORDER BY job_id, chunk"
                )
            ).all()
            # Chunk 4 committed ahead of chunk 3, which is still being written.
            await conn.exec_driver_sql(
                "INSERT INTO file_job_chunks (job_id, chunk) VALUES (901, 4)"
            )
        await migrate.downgrade(db, "0010")
        async with db.engine.connect() as conn:
            checkpoint = (
                await conn.exec_driver_sql("SELECT lines_done FROM file_jobs WHERE job_id = 901")
            ).scalar_one()
        await migrate.upgrade(db)
    finally:
        await db.dispose()

    # Job 903 committed its file's last chunk, 500 lines long, but had not finished yet.
    assert listed == [(901, 0), (901, 1), (901, 2), (903, 0), (903, 1), (903, 2)]
    assert checkpoint == 3000


async def _insert_then_drop_newest(
    conn: AsyncConnection, table: str, inserts: list[str], *, keep: int | None = None
) -> int:
    """Run the inserts and return the highest id; then delete all but the `keep` oldest rows."""
    for statement in inserts:
        await conn.exec_driver_sql(statement)
    highest = int((await conn.exec_driver_sql(f"SELECT max(id) FROM {table}")).scalar_one())
    if keep is not None:
        await conn.exec_driver_sql(
            f"DELETE FROM {table} WHERE id NOT IN (SELECT id FROM {table} ORDER BY id LIMIT {keep})"
        )
    return highest
