"""SQLite: its kind (storage.kinds: engine and connection settings, one node's file) and its
fast path, multi-row `INSERT … VALUES … ON CONFLICT … RETURNING` on aiosqlite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Date, Dialect, Insert, Select, Table, event, make_url, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util import await_only

from loadbay.storage._sql import (
    align,
    column_keys,
    conflict_clause,
    encode_columns,
    encode_rows,
    locked,
    names,
    returned_columns,
    stored_by_key,
    stored_read,
)
from loadbay.storage._writer_lock import WriterLock
from loadbay.storage.bulk import (
    BulkTarget,
    EventClaim,
    Lock,
    OnConflict,
    Row,
    claimed_event_count,
    claimed_events,
)
from loadbay.storage.event_capture import sqlite_event_id_prefix
from loadbay.storage.recent_conflicts import RecentConflicts
from loadbay.storage.types import UtcDateTime
from loadbay.storage.wal_checkpoints import BACKSTOP_PAGES

# SQLite's bound-parameter ceiling is 32,766. 500-row statements measured fastest alone; in
# the server, 1,000 (one trip to aiosqlite's thread per 1,000-record batch, not two) did a
# little better under the write lock.
MAX_PARAMS = 32_000
MAX_ROWS_PER_STATEMENT = 1_000


def _encode_datetime(value: datetime | None) -> str | None:
    return None if value is None else _stamp(value)


def _stamp(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime writes and parses back.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _encode_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


_ENCODERS = {UtcDateTime: _encode_datetime, Date: _encode_date}


class SqliteKind:
    """SQLite for storage.kinds: one node's file, whose one write lock serialises writers."""

    name = "sqlite"
    shared_by_nodes = False
    # The relay holds the one write lock while it publishes a batch.
    relay_batch = 2000

    def create_engine(self, url: str, pool_size: int) -> AsyncEngine:
        database_file = self.database_file(url)
        if database_file is not None:
            database_file.parent.mkdir(parents=True, exist_ok=True)
        # No overflow: one writer at a time, more connections would only queue. The pool's
        # own reset (a ROLLBACK on every return) is `_on_reset`'s, which sends it only where
        # a transaction may still be open: a write unit returns its connection committed,
        # still inside Loadbay's writer lock (WriterLock), and a ROLLBACK was one more trip
        # to aiosqlite's thread there.
        engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=0, pool_reset_on_return=None
        )
        event.listen(engine.sync_engine, "connect", _on_connect)
        event.listen(engine.sync_engine, "begin", _on_begin)
        event.listen(engine.sync_engine.pool, "reset", _on_reset)
        return engine

    def database_file(self, url: str) -> Path | None:
        database = make_url(url).database
        return None if not database or database == ":memory:" else Path(database)

    def pool_capacity(self, pool_size: int) -> int:
        return pool_size

    def counters_engine(self, url: str) -> None:
        return None  # one writer at a time: a unit draws inside its own transaction

    def writer_lock(self, database_file: Path | None) -> WriterLock:
        # One writer at a time: queueing the writers (across processes too) is cheaper than
        # their busy-waiting in SQLite.
        return WriterLock(database_file)

    def bulk_writer(
        self, conn: AsyncConnection, driver_connection: Any, conflicts: RecentConflicts
    ) -> SqliteBulkWriter:
        return SqliteBulkWriter(driver_connection, conn.dialect)

    def upsert_insert(self, table: Table) -> Insert:
        return sqlite.insert(table)

    async def committed_up_to(self, conn: AsyncConnection) -> int | None:
        # One writer at a time: outbox ids are taken in commit order.
        return None

    async def lock_transaction(self, conn: AsyncConnection, lock_id: int) -> None:
        pass  # the write transaction holds the database's only write lock

    async def try_lock_session(self, conn: AsyncConnection, lock_id: int) -> bool:
        return True  # the node owns the file: nobody else to lock out


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module so that BEGIN is ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cursor.close()


# Set on a connection whose BEGIN raised: cancelled, it may still run on the driver's thread.
_BEGIN_UNSETTLED = "loadbay_begin_unsettled"


def _on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: two writers never deadlock on a lock upgrade.
    # On the driver in one trip to its thread; through SQLAlchemy's cursor it took three
    # (cursor, execute, close), under the write lock when IMMEDIATE.
    begin = f"BEGIN {conn.get_execution_options().get('sqlite_begin', '')}"
    try:
        await_only(conn.connection.driver_connection.execute_fetchall(begin))
    except BaseException as error:
        # The pool's reset then sends a ROLLBACK, which the driver's thread runs after it.
        conn.connection.info[_BEGIN_UNSETTLED] = True
        if isinstance(error, sqlite3.Error):
            # Raised as SQLAlchemy raises its statements' errors: a busy database is an
            # outage (503), not a bug (api.errors.is_database_outage).
            raise DBAPIError.instance(begin, None, error, sqlite3.Error) from error
        raise


def _on_reset(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
    unsettled = record.info.pop(_BEGIN_UNSETTLED, False)
    if state.asyncio_safe and (unsettled or dbapi_connection.driver_connection.in_transaction):
        dbapi_connection.rollback()


SQLITE = SqliteKind()


class SqliteBulkWriter:
    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._conn = connection
        self._dialect = dialect

    async def write(
        self,
        target: BulkTarget,
        rows: Sequence[Row],
        on_conflict: OnConflict,
        shared: Row,
        *,
        stored_ids: Sequence[int | None] | None = None,
        counting: bool = False,
        assumed_new: bool = False,
    ) -> list[Sequence[Any] | None]:
        # Every row is answered from RETURNING, `counting` or not.
        if assumed_new:
            raise ValueError("SQLite's writer never takes rows for new: see new_keys_likely")
        columns = target.row_columns(shared)
        # Column by column, and flattened in C: a tuple per row and a generator over every
        # value were most of the Python this ran under the database's only write lock.
        arrays = encode_columns(target.table, columns, rows, _ENCODERS)
        constants = _encoded(target.table, shared)
        step = max(1, min(MAX_ROWS_PER_STATEMENT, MAX_PARAMS // len(columns)))
        returned: list[Sequence[Any]] = []
        for start in range(0, len(rows), step):
            part = zip(*(values[start : start + step] for values in arrays), strict=True)
            # One trip to aiosqlite's thread, not three (execute, fetch, close): under the
            # database's only write lock, each trip is a wait for both threads to wake.
            returned.extend(
                await self._conn.execute_fetchall(
                    _upsert_sql(target, columns, shared, min(step, len(rows) - start), on_conflict),
                    [*constants, *chain.from_iterable(part)],
                )
            )
        return align(target, shared, column_keys(target, columns, shared, arrays), returned)

    def new_keys_likely(self, table: Table, tenant_id: str) -> bool:
        # Never guessed: the read is a local query, and a wrong guess would roll a whole
        # chunk back under the database's only write lock.
        return False

    def met_stored_keys(self, table: Table, tenant_id: str) -> None:
        pass

    async def insert(self, table: Table, columns: Sequence[str], rows: Sequence[Row]) -> None:
        await self._conn.executemany(
            _insert_sql(table, columns), encode_rows(table, columns, rows, _ENCODERS)
        )

    def keys_in(
        self,
        query: Select[Any],
        table: Table,
        columns: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        *,
        lock: Lock = None,
    ) -> Select[Any]:
        """An `IN` list (the write transaction holds SQLite's only write lock)."""
        if len(columns) == 1:
            query = query.where(table.c[columns[0]].in_({key[0] for key in keys}))
        else:
            query = query.where(tuple_(*(table.c[n] for n in columns)).in_(list(set(keys))))
        return locked(query.order_by(*(table.c[n] for n in columns)), table, lock)

    async def stored_rows(
        self,
        table: Table,
        columns: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        wanted: Sequence[str],
    ) -> dict[tuple[Any, ...], Row]:
        # The write transaction holds SQLite's only write lock: nothing to lock row by row.
        if not keys:
            return {}
        fixed, varying, selected = stored_read(columns, keys, wanted)
        # The varying values as one JSON array of rows: SQLite caps the number of parameters.
        params = list(_encoded(table, fixed))
        if varying:
            rows = [dict(zip(columns, key, strict=True)) for key in keys]
            listed = encode_rows(table, tuple(varying), rows, _ENCODERS)
            params.append(orjson.dumps(listed).decode())
        found = await self._conn.execute_fetchall(
            _stored_sql(table, tuple(fixed), tuple(varying), selected), params
        )
        return stored_by_key(table, columns, selected, self._dialect, found)

    async def insert_row(self, table: Table, values: Row) -> int:
        # On the driver, not through SQLAlchemy: 0.6 ms less under the only write lock.
        ((row_id,),) = await self._conn.execute_fetchall(
            f"{_insert_sql(table, list(values))} RETURNING id", _encoded(table, values)
        )
        return int(row_id)

    async def update_row(self, table: Table, row_id: int, values: Row) -> None:
        sets = ", ".join(f'"{c}" = ?' for c in values)
        await self._conn.execute_fetchall(
            f'UPDATE "{table.name}" SET {sets} WHERE id = ?', [*_encoded(table, values), row_id]
        )

    async def capture_events(self, job_ref: str | None, at: datetime) -> None:
        stamp = _stamp(at)
        await self._conn.execute_fetchall(
            "INSERT OR REPLACE INTO capture_context (id, job_ref, event_ts, created_at, "
            "event_id_prefix, job_json, at_json) VALUES (1, ?, ?, ?, ?, ?, ?)",
            (
                job_ref,
                int(at.timestamp() * 1000),
                stamp,
                sqlite_event_id_prefix(),
                orjson.dumps(job_ref).decode(),
                # What the triggers make of a stamp: see event_capture._sqlite_json.
                f'"{stamp.replace(" ", "T")}+00:00"',
            ),
        )

    async def stop_capturing(self) -> None:
        await self._conn.execute_fetchall("DELETE FROM capture_context")

    async def claim_events(self, after: int, up_to: int | None, limit: int) -> EventClaim:
        rows = await self._conn.execute_fetchall(_CLAIM_EVENTS, (after, up_to, limit))
        events = claimed_events(rows)
        through = rows[-1][0] if rows else after
        return EventClaim(events, through, caught_up=claimed_event_count(rows) < limit)

    async def mark_published(self, through: int, next_rank: int = 0) -> None:
        await self._conn.execute_fetchall(_MARK_PUBLISHED, (through, next_rank))


# Whole rows, until they hold the batch's events (as many rows at most); of the row just
# after the relay's position, the events published already are left out. The payloads as
# the bytes sent, the time as seconds since the epoch (stored as UTC text).
_POSITION = "coalesce((SELECT published_through FROM relay_position), 0)"
_CLAIM_EVENTS = (
    "SELECT id, tenant_id, collection, event_count, record_keys, event_ids, "
    "CAST(payloads AS BLOB), "
    "(julianday(created_at) - 2440587.5) * 86400.0, CASE WHEN before = 0 AND ?1 <= "
    f"{_POSITION} THEN coalesce((SELECT published_rank FROM relay_position), 0) ELSE 0 END "
    "FROM (SELECT *, sum(event_count) OVER (ORDER BY id) - event_count AS before FROM outbox "
    f"WHERE id > max(?1, {_POSITION}) AND id <= coalesce(?2, 9223372036854775807) "
    "ORDER BY id LIMIT ?3) WHERE before < ?3 ORDER BY id"
)
_MARK_PUBLISHED = (
    "INSERT INTO relay_position AS p (id, published_through, published_rank) VALUES (1, ?1, ?2) "
    "ON CONFLICT (id) DO UPDATE SET published_through = max(p.published_through, ?1), "
    "published_rank = CASE WHEN ?1 > p.published_through THEN ?2 WHEN ?1 = p.published_through "
    "THEN max(p.published_rank, ?2) ELSE p.published_rank END"
)


def _encoded(table: Table, row: Row) -> tuple[Any, ...]:
    """One row's values, in its own key order, each encoded for its column type."""
    return encode_rows(table, list(row), [row], _ENCODERS)[0]


def _insert_sql(table: Table, columns: Sequence[str]) -> str:
    placeholders = ", ".join("?" for _ in columns)
    return f'INSERT INTO "{table.name}" ({names(columns)}) VALUES ({placeholders})'


def _upsert_sql(
    target: BulkTarget,
    columns: Sequence[str],
    shared: Row,
    row_count: int,
    on_conflict: OnConflict,
) -> str:
    """Rows as VALUES, the shared values bound once (?1…?n, ahead of the rows' parameters)."""
    row = "(" + ", ".join("?" for _ in columns) + ")"
    values = ", ".join(row for _ in range(row_count))
    picked = [f"column{n}" for n in range(1, len(columns) + 1)]
    picked += [f"?{n}" for n in range(1, len(shared) + 1)]
    returning = names(returned_columns(target, shared))
    # `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint.
    return (
        f'INSERT INTO "{target.table.name}" ({names([*columns, *shared])}) '
        f"SELECT {', '.join(picked)} FROM (VALUES {values}) WHERE true "
        f"{conflict_clause(target, on_conflict)} RETURNING {returning}"
    )


@cache
def _stored_sql(
    table: Table, fixed: tuple[str, ...], varying: tuple[str, ...], selected: tuple[str, ...]
) -> str:
    """The fixed key columns bound first, then the varying ones' rows as one JSON array."""
    conditions = [f'"{c}" = ?' for c in fixed]
    if varying:
        picked = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(varying)))
        conditions.append(f"({names(varying)}) IN (SELECT {picked} FROM json_each(?))")
    return (
        f'SELECT {names(selected)} FROM "{table.name}" WHERE {" AND ".join(conditions)} '
        f"ORDER BY {names(varying or fixed)}"
    )
