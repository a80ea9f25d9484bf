"""Run Alembic migrations from code, safely when several nodes start at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.database import Database

_INI = Path(__file__).with_name("alembic.ini")
# Any constant works; it only has to be the same on every node.
_MIGRATION_LOCK_ID = 0x10ADBA7


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(str(_INI))
    config.attributes["connection"] = connection
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    async with _migrating(db) as conn:
        await conn.run_sync(_upgrade, revision)


async def downgrade(db: Database, revision: str) -> None:
    async with _migrating(db) as conn:
        await conn.run_sync(_downgrade, revision)


@asynccontextmanager
async def _migrating(db: Database) -> AsyncIterator[AsyncConnection]:
    """A migration's transaction. On SQLite, with foreign keys off around it: Alembic changes
    a table there by copying it to a new one and dropping the old, and the drop would
    cascade into the tables that reference it (every event and state of the entities)."""
    async with db.engine.connect() as conn:
        if db.dialect != "sqlite":
            async with conn.begin():
                yield conn
            return
        # A pragma, not a statement: it must run outside any transaction.
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute("PRAGMA foreign_keys=OFF")
        try:
            async with conn.begin():
                yield conn
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"migration left rows without their parent: {broken}")
        finally:
            await driver.execute("PRAGMA foreign_keys=ON")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection, revision: str) -> None:
    _lock(connection)
    command.upgrade(alembic_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    _lock(connection)
    command.downgrade(alembic_config(connection), revision)


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Nodes starting together wait for the first one's migration instead of racing it.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
