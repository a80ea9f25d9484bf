"""PostgreSQL: its kind (storage.kinds: engine, locks, the feed's horizon) and its fast path,
one `INSERT … SELECT FROM unnest(arrays)` per chunk, `RETURNING` the rows where the caller
wants them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

from asyncpg import UniqueViolationError
from sqlalchemy import (
    Insert,
    Select,
    String,
    Table,
    Update,
    bindparam,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeEngine

from loadbay.storage import feed_horizon
from loadbay.storage._sql import (
    Encoder,
    align,
    column_keys,
    conflict_clause,
    encode_columns,
    encode_rows,
    locked,
    matched_columns,
    names,
    returned_columns,
    stored_by_key,
    stored_read,
)
from loadbay.storage.bulk import (
    BulkTarget,
    EventClaim,
    Lock,
    OnConflict,
    Row,
    StoredKeysMet,
    claimed_event_count,
    claimed_events,
    inserted_row,
)
from loadbay.storage.event_capture import PG_AT_SETTING, PG_JOB_SETTING, PG_TS_SETTING
from loadbay.storage.recent_conflicts import RecentConflicts

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_NO_LIMIT = 2**63 - 1
# asyncpg takes dates, timestamps and text as they are; JSON text comes from JsonText itself.
_ENCODERS: dict[type[TypeEngine[Any]], Encoder] = {}


# On the driver's connection: through SQLAlchemy, building 2,000 result mappings and an IN
# list of 2,000 parameters was most of the relay's own time. The payload comes as the bytes
# sent and the time as a number: the relay's loop decodes, encodes and subtracts nothing.
_POSITION = "coalesce((SELECT published_through FROM relay_position), 0)"
_CLAIM_AFTER = f"greatest($1, {_POSITION})"
_FIRST_TO_CLAIM = f"(SELECT min(id) FROM outbox WHERE id > {_CLAIM_AFTER})"
# A range of ids as wide as the batch, from the first event to claim: whatever the planner
# estimates, it reads that range alone. As `id > … ORDER BY id LIMIT n` the planner took, on
# a fresh outbox's statistics (none, or older than the backlog), a scan of every event after
# the position and a sort: 11-36 ms a claim with 30,000 pending, and growing with them.
# Whole rows, until they hold the batch's events: the range cannot hold more rows than that.
# Of the row just after the relay's position, the events published already are left out.
_CLAIM_EVENTS = (
    "SELECT id, tenant_id, collection, event_count, record_keys, event_ids, "
    "convert_to(payloads, 'UTF8'), "
    "extract(epoch FROM created_at)::float8, CASE WHEN before = 0 AND $1 <= "
    f"{_POSITION} THEN coalesce((SELECT published_rank FROM relay_position), 0) ELSE 0 END "
    "FROM (SELECT *, sum(event_count) OVER (ORDER BY id) - event_count AS before FROM outbox "
    f"WHERE id >= {_FIRST_TO_CLAIM} AND id < {_FIRST_TO_CLAIM} + $3 AND id <= $2) AS claimed "
    "WHERE before < $3 ORDER BY id"
)
_MARK_PUBLISHED = (
    "INSERT INTO relay_position AS p (id, published_through, published_rank) "
    "VALUES (1, $1, $2) "
    "ON CONFLICT (id) DO UPDATE SET published_through = greatest(p.published_through, $1), "
    "published_rank = CASE WHEN $1 > p.published_through THEN $2 WHEN $1 = p.published_through "
    "THEN greatest(p.published_rank, $2) ELSE p.published_rank END"
)


# A released savepoint stays a subtransaction of its transaction until the end; past 64 of
# them PostgreSQL's per-backend cache overflows and every session's snapshots get slower. So
# a transaction writes by plain INSERTs in savepoints (see `write`) this many times at most.
_MOST_SAVEPOINTS = 32

# A statement that only makes SQLAlchemy open its transaction (asyncpg's opens lazily).
_OPEN = text("SELECT 1")


class PostgresKind:
    """PostgreSQL for storage.kinds: shared by every node, advisory locks between them."""

    name = "postgresql"
    shared_by_nodes = True
    # Rather than 2,000: fewer turns of the relay's loop, each a pause in its share of the
    # cores under a full load (JetStream lag 2.16-3.26 s -> 1.19-1.67 s).
    relay_batch = 5000

    def create_engine(self, url: str, pool_size: int) -> AsyncEngine:
        # No pre-ping: it cost a round trip per checkout (9 of 24 statements per batch). A
        # connection found broken invalidates the pool, and that request answers 503.
        # READ COMMITTED whatever the server's default: the feed's horizon (feed_horizon) and
        # the file jobs' concurrent chunks count on each statement seeing the latest commits.
        overflow = self.pool_capacity(pool_size) - pool_size
        return create_async_engine(
            url, pool_size=pool_size, max_overflow=overflow, isolation_level="READ COMMITTED"
        )

    def database_file(self, url: str) -> Path | None:
        return None

    def pool_capacity(self, pool_size: int) -> int:
        return 2 * pool_size  # as many again under a burst

    def counters_engine(self, url: str) -> AsyncEngine:
        # One connection: it never waits on a unit, so units never wait on it for long.
        # Pre-pinged, unlike the main pool: a draw that finds its connection broken would fail
        # a whole chunk, and one round trip per draw is cheap. In autocommit: a draw is one
        # statement, and BEGIN and COMMIT around it took 700 against 400 us of CPU a draw.
        return create_async_engine(
            url, pool_size=1, max_overflow=0, pool_pre_ping=True, isolation_level="AUTOCOMMIT"
        )

    def writer_lock(self, database_file: Path | None) -> None:
        return None  # row locks: writers of different rows go at once

    def bulk_writer(
        self, conn: AsyncConnection, driver_connection: Any, conflicts: RecentConflicts
    ) -> PostgresBulkWriter:
        return PostgresBulkWriter(conn, driver_connection, conflicts)

    def upsert_insert(self, table: Table) -> Insert:
        return postgresql.insert(table)

    async def committed_up_to(self, conn: AsyncConnection) -> int | None:
        return await feed_horizon.committed_up_to(conn)

    async def lock_transaction(self, conn: AsyncConnection, lock_id: int) -> None:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})

    async def try_lock_session(self, conn: AsyncConnection, lock_id: int) -> bool:
        got = await conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id})
        return bool(got.scalar_one())


POSTGRES = PostgresKind()


@cache
def _row_insert(table: Table) -> Insert:
    # Built once per table: building one per call cost 0.6 ms (construction, cache key).
    return insert(table).returning(table.c.id)


@cache
def _row_update(table: Table) -> Update:
    # The SET columns are those of the parameters given.
    return update(table).where(table.c.id == bindparam("_row_id"))


class PostgresBulkWriter:
    def __init__(
        self, conn: AsyncConnection, driver_connection: Any, conflicts: RecentConflicts
    ) -> None:
        # SQLAlchemy opens the unit's transaction lazily, at its first statement: most units
        # begin with one of its own (the job row), which spares the `SELECT 1` that this
        # writer sends to open it otherwise.
        self._conn = conn
        self._driver = driver_connection
        self._conflicts = conflicts
        self._savepoints = 0

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
        table = target.table
        columns = target.row_columns(shared)
        if not rows:
            return []
        arrays = encode_columns(table, columns, rows, _ENCODERS)
        conn = await self._in_transaction()
        returned: list[Any] = []
        # The positions of the rows to insert.
        new: Sequence[int] = range(len(rows))
        # Whether a read found none of the keys to insert stored (None: no read): if so, they
        # go in plainly first.
        absent = None if stored_ids is None else all(i is None for i in stored_ids)
        if (
            absent is False
            and on_conflict is OnConflict.UPDATE
            and _updates_by_id(target, columns, shared)
        ):
            # The rows found stored, and locked, are updated through their ids: ON CONFLICT
            # probed their key again, after the read had.
            found = [p for p, row_id in enumerate(stored_ids) if row_id is not None]
            new = [p for p, row_id in enumerate(stored_ids) if row_id is None]
            ids = [stored_ids[p] for p in found]
            for part in _statement_parts([ids, *_taken(arrays, found)]):
                values, joined = _parameters(table, ("id", *columns), part)
                sql, constants = _update_sql(target, tuple(columns), tuple(shared), joined)
                returned += await conn.fetch(sql, *values, *(shared[c] for c in constants))
            absent = True
        statement_of = partial(_upsert_sql, target, tuple(columns), tuple(shared))
        # Where rows go when they may meet stored keys: the writes there lately tell.
        tenant_id = shared.get("tenant_id")
        # The parts a plain INSERT wrote whole without returning them.
        unreturned: list[list[list[Any]]] = []
        for part in _statement_parts(_taken(arrays, new)) if new else ():
            parameters, joined = _parameters(table, columns, part)
            values = (*parameters, *shared.values())
            # Counting, a plain INSERT that goes through returns nothing: each of its rows was
            # inserted (RETURNING was 0.2 ms of Loadbay's CPU per 1,000 entities, and the
            # rows' matching by key 0.13 ms more).
            sql = statement_of(on_conflict, joined)
            plain = statement_of(None, joined, returning=not counting)
            plain_first = self.new_keys_likely(table, tenant_id) if absent is None else absent
            if assumed_new:
                returned += await self._insert_new(conn, plain, values, table, tenant_id)
                if counting:
                    unreturned.append(part)
            elif plain_first and self._savepoints < _MOST_SAVEPOINTS:
                self._savepoints += 1
                written, conflicted = await _insert_unless_conflicting(conn, plain, sql, values)
                if conflicted:
                    self.met_stored_keys(table, tenant_id)
                elif counting:
                    unreturned.append(part)
                returned += written
            else:
                returned += await conn.fetch(sql, *values)
        inserted = inserted_row(target, shared)
        if sum(len(part[0]) for part in unreturned) == len(rows):
            return [inserted] * len(rows)  # all of them, by plain INSERTs
        key_positions = [columns.index(c) for c in matched_columns(target, shared)]
        for part in unreturned:
            keys = zip(*(part[p] for p in key_positions), strict=True)
            returned += [(*inserted, *key) for key in keys]
        return align(target, shared, column_keys(target, columns, shared, arrays), returned)

    def new_keys_likely(self, table: Table, tenant_id: str) -> bool:
        return not self._conflicts.expected((table.name, tenant_id))

    def met_stored_keys(self, table: Table, tenant_id: str) -> None:
        self._conflicts.met((table.name, tenant_id))

    async def _insert_new(
        self, conn: Any, plain: str, values: Sequence[Any], table: Table, tenant_id: str
    ) -> list[Any]:
        """Rows taken for new, by a plain INSERT without a savepoint: one that meets a key
        stored spoils the transaction, which the caller writes again after a read."""
        try:
            return list(await conn.fetch(plain, *values))
        except UniqueViolationError as error:
            self.met_stored_keys(table, tenant_id)
            raise StoredKeysMet(str(error)) from error

    def keys_in(
        self,
        query: Select[Any],
        table: Table,
        columns: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        *,
        lock: Lock = None,
    ) -> Select[Any]:
        """The table's index probed once per key: a LATERAL subquery over `unnest()` of one
        array per column. A plain join leaves the choice to the planner, whose estimates for
        a table loaded without ANALYZE are stale: it sorted or hashed every row of the tenant
        for each chunk (400 ms per 1,000 keys at 200,000 rows)."""
        arrays = [
            bindparam(None, [key[i] for key in keys], type_=ARRAY(table.c[name].type))
            for i, name in enumerate(columns)
        ]
        unnested = func.unnest(*arrays).table_valued(*columns).render_derived(name="unnested")
        # Sorted (and deduplicated) here, so that the nested loop below visits keys in order.
        wanted = select(unnested).distinct().order_by(*unnested.c).subquery("wanted")
        matches = query.where(*(table.c[n] == wanted.c[n] for n in columns))
        found = locked(matches, table, lock).lateral("found")
        return select(found).select_from(wanted).join(found, true()).order_by(*wanted.c)

    async def insert(self, table: Table, columns: Sequence[str], rows: Sequence[Row]) -> None:
        records = encode_rows(table, columns, rows, _ENCODERS)
        conn = await self._in_transaction()
        await conn.copy_records_to_table(table.name, records=records, columns=list(columns))

    async def stored_rows(
        self,
        table: Table,
        columns: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        wanted: Sequence[str],
    ) -> dict[tuple[Any, ...], Row]:
        if not keys:
            return {}
        fixed, varying, selected = stored_read(columns, keys, wanted)
        arrays, joined = _parameters(table, tuple(varying), list(varying.values()))
        sql = _stored_sql(table, tuple(fixed), tuple(varying), selected, joined)
        conn = await self._in_transaction()
        found = await conn.fetch(sql, *arrays, *fixed.values())
        return stored_by_key(table, columns, selected, self._conn.dialect, found, by_name=True)

    async def insert_row(self, table: Table, values: Row) -> int:
        return int((await self._conn.execute(_row_insert(table), values)).scalar_one())

    async def update_row(self, table: Table, row_id: int, values: Row) -> None:
        await self._conn.execute(_row_update(table), {**values, "_row_id": row_id})

    async def capture_events(self, job_ref: str | None, at: datetime) -> None:
        conn = await self._in_transaction()
        await conn.execute(
            "SELECT set_config($1, $2, true), set_config($3, $4, true), set_config($5, $6, true)",
            PG_TS_SETTING,
            str(int(at.timestamp() * 1000)),
            PG_JOB_SETTING,
            job_ref or "",
            PG_AT_SETTING,
            at.isoformat(),
        )

    async def stop_capturing(self) -> None:
        conn = await self._in_transaction()
        await conn.execute("SELECT set_config($1, '', true)", PG_TS_SETTING)

    async def claim_events(self, after: int, up_to: int | None, limit: int) -> EventClaim:
        up_to = _NO_LIMIT if up_to is None else up_to
        conn = await self._in_transaction()
        rows = await conn.fetch(_CLAIM_EVENTS, after, up_to, limit)
        if not rows:
            return EventClaim([], after, caught_up=True)
        events = claimed_events(rows)
        # Rows holding `limit` events, those published already included, may stop short of
        # the range's end: the claim then goes as far as its last row.
        full = claimed_event_count(rows) >= limit
        through = rows[-1][0] if full else min(rows[0][0] + limit - 1, up_to)
        return EventClaim(events, through, caught_up=through >= up_to)

    async def mark_published(self, through: int, next_rank: int = 0) -> None:
        conn = await self._in_transaction()
        await conn.execute(_MARK_PUBLISHED, through, next_rank)

    async def _in_transaction(self) -> Any:
        """The driver's connection, inside the unit's transaction."""
        if not self._driver.is_in_transaction():
            await self._conn.execute(_OPEN)
        return self._driver


async def _insert_unless_conflicting(
    conn: Any, plain: str, upsert: str, values: Sequence[Any]
) -> tuple[list[Any], bool]:
    """Rows that may conflict, written by a plain INSERT in a savepoint, and only when that
    meets a stored key again with their ON CONFLICT clause; whether it met one.

    PostgreSQL's speculative insertion for ON CONFLICT cost 2.8-2.9 µs a row, 17-19% of its
    CPU for 1,000 activities. A plain INSERT that fails costs too: 9% of a re-load of
    entities when every batch tried one (hence `RecentConflicts`).
    """
    await conn.execute("SAVEPOINT loadbay_plain_insert")
    try:
        rows, conflicted = await conn.fetch(plain, *values), False
    except UniqueViolationError:
        await conn.execute("ROLLBACK TO SAVEPOINT loadbay_plain_insert")
        rows, conflicted = await conn.fetch(upsert, *values), True
    await conn.execute("RELEASE SAVEPOINT loadbay_plain_insert")
    return list(rows), conflicted


@cache
def _upsert_sql(
    target: BulkTarget,
    columns: tuple[str, ...],
    shared: tuple[str, ...],
    on_conflict: OnConflict | None,
    joined: bool,
    *,
    returning: bool = True,
) -> str:
    """The rows as one array per column ($1…, text columns `joined` or not: see
    `_parameters`), the shared values bound once after them; a plain INSERT when
    `on_conflict` is None; RETURNING `returned_columns` unless not `returning`.

    Arrays rather than COPY into a staging table: one round trip instead of two, no
    temporary table emptied (a file truncated) at every commit, and 9% less PostgreSQL CPU
    for 1,000 entities with their events (13.7 against 15.0 ms, 4 connections at once).
    """
    table = target.table
    arrays = [_array(table, c, n, joined) for n, c in enumerate(columns, start=1)]
    constants = [
        f"${n}::{_sql_type(table, c)}" for n, c in enumerate(shared, start=len(columns) + 1)
    ]
    # Rows go in key order, so that concurrent batches lock keys in one order: no deadlock.
    # Text in byte order, as Python sorted the keys and as the key columns compare
    # (`key_text`): under the database's collation the sort went through strcoll.
    order = ", ".join(
        f'"{c}" COLLATE "C"' if _sql_type(table, c) in _TEXT_TYPES else f'"{c}"'
        for c in matched_columns(target, shared)
    )
    conflict = f" {conflict_clause(target, on_conflict)}" if on_conflict else ""
    returned = f" RETURNING {names(returned_columns(target, shared))}" if returning else ""
    return (
        f'INSERT INTO "{table.name}" ({names([*columns, *shared])}) '
        f"SELECT {', '.join([names(columns), *constants])} "
        f"FROM unnest({', '.join(arrays)}) AS batch ({names(columns)}) "
        f"ORDER BY {order}{conflict}{returned}"
    )


def _updates_by_id(target: BulkTarget, columns: Sequence[str], shared: Row) -> bool:
    """Whether `_update_sql` can update stored rows: not where an updated column is neither
    in the rows nor shared (ON CONFLICT would set its default)."""
    return all(c in columns or c in shared for c in _updated_columns(target))


def _updated_columns(target: BulkTarget) -> tuple[str, ...]:
    """The columns an update sets or compares: those of `conflict_clause`."""
    return (*target.update_columns, *target.update_guard)


@cache
def _update_sql(
    target: BulkTarget, columns: tuple[str, ...], shared: tuple[str, ...], joined: bool
) -> tuple[str, tuple[str, ...]]:
    """An UPDATE of stored rows by id: the ids ($1), then one array per column (text columns
    `joined` or not), then the shared values it sets (their names, returned beside the
    statement); the columns and guard of `conflict_clause` (see `_updates_by_id`)."""
    table = target.table
    constants = tuple(c for c in shared if c in _updated_columns(target))
    first = len(columns) + 2
    value = {c: f'batch."{c}"' for c in columns}
    value.update({c: f"${n}::{_sql_type(table, c)}" for n, c in enumerate(constants, first)})
    sets = [f'"{c}" = {value[c]}' for c in target.update_columns]
    if target.version_column:
        sets.append(f'"{target.version_column}" = t."{target.version_column}" + 1')
    conditions = ["t.id = batch._stored_id"]
    conditions += [f't."{c}" = {value[c]}' for c in target.update_guard]
    arrays = ["$1::BIGINT[]"]
    arrays += [_array(table, c, n, joined) for n, c in enumerate(columns, start=2)]
    returning = ", ".join(f't."{c}"' for c in returned_columns(target, shared))
    sql = (
        f'UPDATE "{table.name}" AS t SET {", ".join(sets)} '
        f"FROM unnest({', '.join(arrays)}) AS batch (_stored_id, {names(columns)}) "
        f"WHERE {' AND '.join(conditions)} RETURNING {returning}"
    )
    return sql, constants


# A text column's values go as one text, joined by a character they do not hold, which
# PostgreSQL splits again (`string_to_array`, NULL written as a second one): asyncpg
# encodes a text[] parameter checking each element against three ABCs, 1.4 µs of Loadbay's
# CPU an entity for its three text columns against 0.4 joined, and PostgreSQL splits the
# text faster than it decodes the array (0.8 against 1.0 µs). Control characters that JSON
# text always escapes.
_SEPARATOR, _NULL = "\x1f", "\x1e"
_TEXT_TYPES = ("VARCHAR", "TEXT")


def _parameters(
    table: Table, columns: Sequence[str], arrays: list[list[Any]]
) -> tuple[list[Any], bool]:
    """The statement's parameters for the rows' column lists: each text column's values
    joined by `_SEPARATOR` into one text (None as `_NULL`), and True; or the lists as they
    are, and False, where a value holds either character, a single row's value is empty
    (which splits into no element), or a value is not text (None in a column that takes
    none, say: the database's own refusal then names the column)."""
    parameters = list(arrays)
    for position, nullable in _text_positions(table, tuple(columns)):
        values = arrays[position]
        nulls = values.count(None) if nullable else 0
        if nulls:
            values = [_NULL if value is None else value for value in values]
        try:
            joined = _SEPARATOR.join(values)
        except TypeError:
            return arrays, False
        if (
            not joined
            or joined.count(_SEPARATOR) != len(values) - 1
            or joined.count(_NULL) != nulls
        ):
            return arrays, False
        parameters[position] = joined
    return parameters, True


@cache
def _text_positions(table: Table, columns: tuple[str, ...]) -> tuple[tuple[int, bool], ...]:
    """The text columns' positions, and whether each may hold NULL."""
    return tuple(
        (p, bool(table.columns[c].nullable))
        for p, c in enumerate(columns)
        if _sql_type(table, c) in _TEXT_TYPES
    )


def _array(table: Table, column: str, number: int, joined: bool) -> str:
    """Parameter `number` as the array of the column's values (see `_parameters`)."""
    sql_type = _sql_type(table, column)
    if joined and sql_type in _TEXT_TYPES:
        return f"string_to_array(${number}, chr({ord(_SEPARATOR)}), chr({ord(_NULL)}))"
    return f"${number}::{sql_type}[]"


def _sql_type(table: Table, column: str) -> str:
    """The column's type for a cast, without a length: an explicit cast to VARCHAR(n) cuts a
    longer value short, where the insert's own conversion refuses it (22001)."""
    column_type = table.columns[column].type
    if isinstance(column_type, String) and column_type.length is not None:
        return "VARCHAR"
    return str(column_type.compile(dialect=_DIALECT))


# PostgreSQL takes 1 GB at most in one message: a chunk (a file's may hold 100,000 lines of
# any length) goes in statements of at most this many characters of text.
_MAX_STATEMENT_TEXT = 64 * 2**20


def _taken(arrays: list[list[Any]], positions: Sequence[int]) -> list[list[Any]]:
    """The rows at these positions, still one list per column; all of them as they are."""
    if len(positions) == len(arrays[0]):
        return arrays
    return [[values[p] for p in positions] for values in arrays]


def _statement_parts(arrays: list[list[Any]]) -> Iterator[list[list[Any]]]:
    """The rows (one list per column) in as many consecutive parts as their size needs."""
    text = sum(
        sum(map(len, filter(None, values)))
        for values in arrays
        if isinstance(next(filter(None, values), None), str)
    )
    parts = text // _MAX_STATEMENT_TEXT + 1
    if parts == 1:
        yield arrays
        return
    # Consecutive slices of rows sorted by key: the locks are still taken in key order.
    count = len(arrays[0])
    step = -(-count // parts)
    for start in range(0, count, step):
        yield [values[start : start + step] for values in arrays]


@cache
def _stored_sql(
    table: Table,
    fixed: tuple[str, ...],
    varying: tuple[str, ...],
    selected: tuple[str, ...],
    joined: bool,
) -> str:
    """The varying key columns as arrays ($1…, text ones `joined` or not: `_parameters`),
    the fixed ones after them.

    The index is probed once per key, through a LATERAL subquery over the keys in the order
    given (see `keys_in` for why not a join); its ORDER BY keeps that order (the
    planner sorts nothing for it) and the subquery apart. The engine gives the keys sorted
    and distinct: sorting and deduplicating them again here was a fifth of the statement's
    time for 2,000 keys (a hash aggregate and a sort by collation).
    """
    conditions = [f't."{c}" = ${n}' for n, c in enumerate(fixed, start=len(varying) + 1)]
    columns = ", ".join(f't."{c}"' for c in selected)
    if not varying:
        return f'SELECT {columns} FROM "{table.name}" t WHERE {" AND ".join(conditions)} FOR UPDATE'
    arrays = ", ".join(_array(table, c, n, joined) for n, c in enumerate(varying, start=1))
    conditions += [f't."{c}" = wanted."{c}"' for c in varying]
    return (
        f"SELECT found.* FROM (SELECT * FROM unnest({arrays}) WITH ORDINALITY "
        f"AS keys ({names(varying)}, _position) ORDER BY _position) AS wanted "
        f'CROSS JOIN LATERAL (SELECT {columns} FROM "{table.name}" t '
        f"WHERE {' AND '.join(conditions)} FOR UPDATE OF t) AS found"
    )
