"""A write unit is one transaction, also when its first statement goes through the bulk path."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.exc import IntegrityError, OperationalError

from loadbay.api.errors import is_database_outage
from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.engine import write_records
from loadbay.storage.database import Database, lost_a_race
from loadbay.storage.instances import allocate_hrids
from loadbay.storage.tables import activities
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow
from tests.databases import POSTGRES_URL, asyncpg_dsn
from tests.factories import activity


class _Abandon(Exception):
    pass


async def _write(db: Database, count: int, *, abandon: bool) -> None:
    async with db.write() as unit:
        await write_records(
            unit,
            ACTIVITIES,
            "t1",
            [(n, activity(n)) for n in range(count)],
            mode=ConflictMode.FAIL,
            chunk_size=1000,
            now=utcnow(),
        )
        if abandon:
            raise _Abandon


async def test_a_unit_opened_by_a_bulk_write_rolls_back_whole(database_url: str) -> None:
    db = Database(database_url)
    try:
        with pytest.raises(_Abandon):
            await _write(db, 3, abandon=True)
        async with db.read() as conn:
            after_abandon = (await conn.execute(select(func.count()).select_from(activities))).one()
        await _write(db, 2, abandon=False)
        async with db.read() as conn:
            after_commit = (await conn.execute(select(func.count()).select_from(activities))).one()
    finally:
        await db.dispose()

    assert after_abandon == (0,)
    assert after_commit == (2,)


async def test_a_connection_given_back_inside_a_transaction_serves_again_rolled_back(
    database_url: str, backend: str
) -> None:
    """The pool ends what a connection's user left open (on SQLite only then: a unit gives
    its connection back committed, and a ROLLBACK on every return was one more trip to the
    driver's thread under the write lock)."""
    if backend != "sqlite":
        pytest.skip("SQLite's pool reset is Loadbay's own; PostgreSQL's is SQLAlchemy's")
    db = Database(database_url, pool_size=1)
    try:
        await _write(db, 1, abandon=False)
        conn = await db.engine.connect()
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("DELETE FROM activities")
        await conn.close()  # SQLAlchemy knows of no transaction: the pool's reset must end it
        async with asyncio.timeout(10), db.write() as unit:  # the only connection, again
            kept = (await unit.conn.execute(select(func.count()).select_from(activities))).one()
    finally:
        await db.dispose()

    assert kept == (1,)


@pytest.fixture
async def held_sqlite_file(
    database_url: str, backend: str
) -> AsyncIterator[tuple[Database, sqlite3.Connection]]:
    """A database of one connection, and another writer of its file, outside Loadbay's
    writer lock, holding SQLite's write lock."""
    if backend != "sqlite":
        pytest.skip("SQLite's BEGIN is sent on its driver")
    db = Database(database_url, pool_size=1)
    holder = sqlite3.connect(make_url(database_url).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield db, holder
    finally:
        holder.close()  # rolls back what it still holds
        await db.dispose()


async def _busy_timeout(db: Database, milliseconds: int) -> None:
    async with db.engine.connect() as conn:  # the pool's only connection
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute(f"PRAGMA busy_timeout={milliseconds}")


async def test_a_begin_refused_by_a_busy_sqlite_file_is_an_outage(
    held_sqlite_file: tuple[Database, sqlite3.Connection],
) -> None:
    db, _ = held_sqlite_file
    await _busy_timeout(db, 50)
    with pytest.raises(OperationalError) as refused:
        await _write(db, 1, abandon=False)
    assert is_database_outage(refused.value)  # answered 503, not 500


async def test_a_unit_cancelled_while_its_begin_waits_leaves_no_transaction_behind(
    held_sqlite_file: tuple[Database, sqlite3.Connection],
) -> None:
    """The cancelled BEGIN still runs on aiosqlite's thread once the file is free: the pool
    must end it, or the idle connection holds SQLite's write lock for good."""
    db, holder = held_sqlite_file
    await _busy_timeout(db, 5000)
    waiting = asyncio.create_task(_write(db, 1, abandon=False))
    await asyncio.sleep(0.3)  # inside BEGIN IMMEDIATE, waiting for the file
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    holder.rollback()
    async with asyncio.timeout(10):
        await _write(db, 2, abandon=False)  # the same connection, usable again
    holder.execute("BEGIN IMMEDIATE")  # and the file's write lock free
    holder.rollback()
    async with db.read() as conn:
        written = (await conn.execute(select(func.count()).select_from(activities))).one()
    assert written == (2,)


async def test_counters_drawn_in_an_open_unit_do_not_hold_up_other_units(
    database_url: str, backend: str
) -> None:
    """PostgreSQL: hrid numbers come from a connection that commits at once, so a second
    writer draws the next ones while the first unit is still open; a unit that rolls back
    leaves its numbers unused, as a sequence does."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: its units draw inside their transaction")
    db = Database(database_url)
    drawn: list[range] = []

    async def draw_then_abandon() -> None:
        async with db.write() as first:
            async with first.counters() as conn:
                drawn.append(await allocate_hrids(conn, "t-counters", 3))
            async with asyncio.timeout(10), db.write() as second, second.counters() as conn:
                drawn.append(await allocate_hrids(conn, "t-counters", 2))
            raise _Abandon

    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t-counters", "t")
        with pytest.raises(_Abandon):
            await draw_then_abandon()
        async with db.write() as third, third.counters() as conn:
            drawn.append(await allocate_hrids(conn, "t-counters", 1))
    finally:
        await db.dispose()

    assert drawn == [range(1, 4), range(4, 6), range(6, 7)]


async def test_a_transaction_rolled_back_to_break_a_deadlock_counts_as_a_lost_race(
    database_url: str, backend: str
) -> None:
    """File jobs write such a chunk again, as one that met a unique value another transaction
    committed meanwhile; any other database error is not a race."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: its transactions cannot deadlock")
    db = Database(database_url)
    try:
        async with db.write() as unit:
            for tenant in ("t-race-a", "t-race-b"):
                await ensure_tenant(unit.conn, tenant, tenant)
                await allocate_hrids(unit.conn, tenant, 1)
        locked = [asyncio.Event(), asyncio.Event()]

        async def take(mine: int) -> None:
            order = ["t-race-a", "t-race-b"] if mine == 0 else ["t-race-b", "t-race-a"]
            async with db.write() as unit:
                await allocate_hrids(unit.conn, order[0], 1)
                locked[mine].set()
                await locked[1 - mine].wait()
                await allocate_hrids(unit.conn, order[1], 1)

        outcomes = await asyncio.gather(take(0), take(1), return_exceptions=True)
        with pytest.raises(IntegrityError) as duplicate:
            await _insert_tenant(db, "'t-race-a'")
        with pytest.raises(IntegrityError) as no_id:
            await _insert_tenant(db, "NULL")
    finally:
        await db.dispose()

    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(failed) == 1
    assert lost_a_race(failed[0])
    assert lost_a_race(duplicate.value)
    assert not lost_a_race(no_id.value)


async def _insert_tenant(db: Database, id_literal: str) -> None:
    async with db.write() as unit:
        await unit.conn.exec_driver_sql(
            "INSERT INTO tenants (id, name, created_at)"
            f" VALUES ({id_literal}, 'x', CURRENT_TIMESTAMP)"
        )


async def test_units_read_committed_whatever_the_servers_default(backend: str) -> None:
    """The feed's horizon and concurrent file chunks count on each statement seeing the latest
    commits: a database defaulting to REPEATABLE READ must not change that."""
    if backend == "sqlite":
        pytest.skip("SQLite has no isolation levels to choose from")
    name = f"loadbay_isolation_{os.getpid()}"
    admin = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.execute(f"CREATE DATABASE {name}")
        await admin.execute(
            f"ALTER DATABASE {name} SET default_transaction_isolation = 'repeatable read'"
        )
        db = Database(make_url(POSTGRES_URL).set(database=name).render_as_string(False))
        try:
            async with db.read() as conn:
                read = (await conn.exec_driver_sql("SHOW transaction_isolation")).scalar()
            async with db.write() as unit:
                write = (await unit.conn.exec_driver_sql("SHOW transaction_isolation")).scalar()
        finally:
            await db.dispose()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.close()

    assert (read, write) == ("read committed", "read committed")
