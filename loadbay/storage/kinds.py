"""What differs between the databases Loadbay runs on: one object per database
(storage.postgres.POSTGRES, storage.sqlite.SQLITE) that sets up its engine, makes its units'
bulk writers and answers what else differs, which the rest of the code asks instead of
asking which database it is on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loadbay.storage._writer_lock import WriterLock
from loadbay.storage.bulk import BulkWriter
from loadbay.storage.postgres import POSTGRES
from loadbay.storage.recent_conflicts import RecentConflicts
from loadbay.storage.sqlite import SQLITE


class DatabaseKind(Protocol):
    # SQLAlchemy's name of the dialect.
    name: str
    # Whether the nodes of a deployment share the database (PostgreSQL), or one node owns it
    # (an SQLite file), whose one write lock serialises its writers already.
    shared_by_nodes: bool
    # Events a relay cycle publishes, unless LOADBAY_RELAY_BATCH_SIZE says otherwise.
    relay_batch: int

    def create_engine(self, url: str, pool_size: int) -> AsyncEngine:
        """The engine of `url` as Loadbay uses it: its pool, isolation and session settings."""
        ...

    def database_file(self, url: str) -> Path | None:
        """The file that holds the database, where one does."""
        ...

    def pool_capacity(self, pool_size: int) -> int:
        """The most connections the engine's pool opens at once."""
        ...

    def counters_engine(self, url: str) -> AsyncEngine | None:
        """An engine of its own for counters (hrid draws), or None: units draw on their own
        connection (see WriteUnit.counters)."""
        ...

    def writer_lock(self, database_file: Path | None) -> WriterLock | None:
        """What queues the writers of the database before its transaction opens, if anything."""
        ...

    def bulk_writer(
        self, conn: AsyncConnection, driver_connection: Any, conflicts: RecentConflicts
    ) -> BulkWriter:
        """The fast path of a unit whose SQLAlchemy connection is `conn`, on its driver's own."""
        ...

    def upsert_insert(self, table: Table) -> Any:
        """An INSERT that offers `.on_conflict_do_nothing()` / `.on_conflict_do_update()`."""
        ...

    async def committed_up_to(self, conn: AsyncConnection) -> int | None:
        """The highest outbox id below which nothing is left to commit; None: no limit
        (see feed_horizon). Run in the read's own transaction, before its read."""
        ...

    async def lock_transaction(self, conn: AsyncConnection, lock_id: int) -> None:
        """Queue the transaction of `conn` behind any other holding `lock_id`, until it ends."""
        ...

    async def try_lock_session(self, conn: AsyncConnection, lock_id: int) -> bool:
        """Take `lock_id` for the session of `conn`, until it closes: False if another has it."""
        ...


_KINDS: dict[str, DatabaseKind] = {kind.name: kind for kind in (SQLITE, POSTGRES)}


def kind_named(dialect: str) -> DatabaseKind:
    """The kind of the database SQLAlchemy's `dialect` names; ValueError for any other."""
    kind = _KINDS.get(dialect)
    if kind is None:
        raise ValueError(f"unsupported database {dialect!r}: use {' or '.join(_KINDS)}")
    return kind


def kind_of(conn: AsyncConnection) -> DatabaseKind:
    return _KINDS[conn.dialect.name]
