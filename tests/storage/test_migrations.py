"""The migrations build exactly the schema the code declares, and undo it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from loadbay.storage import migrate
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
        assert await migrate.current_revision(db) == migrate.head_revision()
    finally:
        await db.dispose()


async def test_downgrade_to_base_and_back(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.downgrade(db, "base")
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
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
