"""Which schema revision a database is at, and which one this code needs, without Alembic.

Every worker checks the revision at start and on `/readyz`; reading it here keeps Alembic and
Mako (10 MB per process) out of the processes that never migrate.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from loadbay.storage.database import Database

# The newest migration in storage/migrations/versions; a test holds the two together.
HEAD = "0020"

_VERSION_TABLE = "alembic_version"


async def current_revision(db: Database) -> str | None:
    """The database's revision; None before the first migration. Several rows (branches
    merged by hand) read as all of them, which is never the revision this code needs."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_read_revision)


def _read_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    found = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars()
    return "+".join(sorted(found)) or None
