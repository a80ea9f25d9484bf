"""The database handle: its engine (from its kind, storage.kinds) and the read and write units
of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loadbay.storage.bulk import BulkWriter
from loadbay.storage.kinds import kind_named
from loadbay.storage.recent_conflicts import RecentConflicts
from loadbay.storage.wal_checkpoints import WalCheckpoints


@dataclass
class WriteUnit:
    """One write transaction: Core statements on `conn`, bulk writes and job rows on `bulk`."""

    conn: AsyncConnection
    bulk: BulkWriter
    # The driver's own connection (aiosqlite or asyncpg) under both. Write through `bulk`:
    # on PostgreSQL a statement sent here first would run outside the unit's transaction.
    driver: Any
    # Where counters are drawn (hrid numbers). On PostgreSQL, a connection of their own whose
    # every use commits at once: concurrent writers do not queue on a counter's row until the
    # unit that drew from it commits, and a unit that rolls back leaves a gap, as a sequence
    # does. On SQLite, which has one writer at a time, the unit's own connection.
    counters: Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Database:
    """Owns the engine; hands out transactions. The caller's block is the transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.dialect = make_url(url).get_backend_name()
        self.kind = kind_named(self.dialect)
        self.url = url
        database_file = self.kind.database_file(url)
        self.engine: AsyncEngine = self.kind.create_engine(url, pool_size)
        self.pool_capacity = self.kind.pool_capacity(pool_size)
        # See WriteUnit.counters: None where units draw on their own connection.
        self._counters = self.kind.counters_engine(url)
        # Where the database has one writer at a time (SQLite), queueing here is cheaper than
        # busy-waiting; None where it has row locks.
        self._writer_lock = self.kind.writer_lock(database_file)
        self._recent_conflicts = RecentConflicts()
        # Run by the server beside its writers (see wal_checkpoints); None on PostgreSQL.
        self.wal_checkpoints = WalCheckpoints(database_file) if database_file else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[WriteUnit]:
        if self._writer_lock is None:
            async with self._write_transaction() as unit:
                yield unit
            return
        async with self._writer_lock.held(), self._write_transaction() as unit:
            yield unit
        if self.wal_checkpoints is not None:
            self.wal_checkpoints.note_write()

    @asynccontextmanager
    async def _write_transaction(self) -> AsyncIterator[WriteUnit]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                driver = (await conn.get_raw_connection()).driver_connection
                bulk = self.kind.bulk_writer(conn, driver, self._recent_conflicts)
                counters = self._counters.begin if self._counters else lambda: nullcontext(conn)
                yield WriteUnit(conn=conn, bulk=bulk, driver=driver, counters=counters)

    async def analyze(self, table: str) -> None:
        """Refresh the planner's statistics of a table after a large load.

        Autovacuum may be off or late; plans made for an empty table cost seconds per run
        once it holds millions of rows.
        """
        async with self.write() as unit:
            await unit.conn.exec_driver_sql(f'ANALYZE "{table}"')

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._counters is not None:
            await self._counters.dispose()
        if self._writer_lock is not None:
            self._writer_lock.close()


# PostgreSQL's deadlock_detected and serialization_failure, and unique_violation: a
# concurrent transaction committed a unique value (an hrid) this one took meanwhile, which
# its checks, run before, could not see. The transaction was rolled back whole: running it
# again is safe, and its checks then see the other's value.
_LOST_A_RACE = {"40P01", "40001", "23505"}


def lost_a_race(exc: BaseException) -> bool:
    """Whether the database rolled the transaction back to let a concurrent one through."""
    return any(
        getattr(error, "sqlstate", None) in _LOST_A_RACE
        for error in (exc, getattr(exc, "orig", None))
    )
