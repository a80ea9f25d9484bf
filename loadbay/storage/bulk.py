"""The write interface on the driver; `sqlite.py` and `postgres.py` are its two fast paths."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, AnyStr, Literal, NamedTuple, Protocol

import orjson
from sqlalchemy import Select, Table

from loadbay.storage.tables import ORIGIN_INDEX, ORIGIN_JOB

# Written once, by the insert: an update leaves them naming the record that created the row.
ORIGIN_COLUMNS = (ORIGIN_JOB, ORIGIN_INDEX)

Row = Mapping[str, Any]
# How `BulkWriter.keys_in` locks the rows it selects: shared, exclusive, or not at all.
Lock = Literal["share", "update"] | None


class PendingEvent(NamedTuple):
    """An outbox event claimed for publishing: `id` is its row's (which may hold others),
    `rank` its place in the row, from 1; `payload` the event's JSON text as UTF-8 bytes, as
    sent; `written_at` when it was written, in seconds since the epoch."""

    id: int
    rank: int
    tenant_id: str
    collection: str
    record_key: str
    event_id: str
    payload: bytes
    written_at: float


def row_payloads(payloads: AnyStr, count: int) -> list[AnyStr]:
    """The events of an outbox row, one a line (compact JSON holds no line break), as text or
    bytes; a row of one event is the event whole, whatever it holds."""
    if count == 1:
        return [payloads]
    return payloads.split(b"\n" if isinstance(payloads, bytes) else "\n")  # type: ignore[arg-type]


def claimed_events(rows: Iterable[Sequence[Any]]) -> list[PendingEvent]:
    """The events of claimed outbox rows, in order, but those published already. A row: its
    id, tenant_id, collection, event_count, record_keys and event_ids (JSON arrays), payloads
    (UTF-8 bytes, one event a line), written_at, and how many of its first events were
    published."""
    events = []
    for row in rows:
        row_id, tenant_id, collection, count, keys, event_ids, payloads, written_at, done = row
        lines = row_payloads(payloads, count)
        in_row = zip(orjson.loads(keys), orjson.loads(event_ids), lines, strict=True)
        for rank, (key, event_id, payload) in enumerate(in_row, start=1):
            if rank > done:
                events.append(
                    PendingEvent(
                        row_id, rank, tenant_id, collection, key, event_id, payload, written_at
                    )
                )
    return events


def claimed_event_count(rows: Sequence[Sequence[Any]]) -> int:
    """How many events claimed rows hold, those published already included."""
    return sum(row[3] for row in rows)


class EventClaim(NamedTuple):
    """Events claimed for publishing. Every row id up to `through` was claimed, or names no
    row (never will: it is at most the limit asked for); `caught_up`: none is left after it."""

    events: list[PendingEvent]
    through: int
    caught_up: bool


class StoredKeysMet(Exception):
    """A write that took its rows for new (`assumed_new`) met a stored key, or a unique value
    a concurrent writer took: its transaction is spoiled. Write the rows again, in a new
    transaction, after reading what is stored."""


class OnConflict(Enum):
    NOTHING = "nothing"
    UPDATE = "update"


@dataclass(frozen=True)
class BulkTarget:
    """How rows of one table are written in bulk."""

    table: Table
    conflict_columns: tuple[str, ...]
    insert_columns: tuple[str, ...]
    update_columns: tuple[str, ...]
    returning: tuple[str, ...]
    version_column: str | None
    # An update happens only where these columns already hold the incoming values; a row
    # that fails the guard is not written and comes back as a conflict.
    update_guard: tuple[str, ...] = ()

    def row_columns(self, shared: Row) -> tuple[str, ...]:
        """The inserted columns whose values each row brings itself."""
        return tuple(c for c in self.insert_columns if c not in shared)

    def keys(self, rows: Sequence[Row], shared: Row) -> list[tuple[Any, ...]]:
        """Each row's conflict key, shared columns included."""
        columns = self.conflict_columns
        *leading, last = columns
        if all(c in shared for c in leading) and last not in shared:
            # The common shape, (tenant_id, natural key): no generator per row.
            fixed = tuple(shared[c] for c in leading)
            return [(*fixed, row[last]) for row in rows]
        return [tuple(shared[c] if c in shared else row[c] for c in columns) for row in rows]

    @classmethod
    def for_table(
        cls, table: Table, conflict_columns: tuple[str, ...], update_guard: tuple[str, ...] = ()
    ) -> BulkTarget:
        """Insert every column but the generated id; on update keep creation and key columns."""
        insert = tuple(c.name for c in table.columns if c.name != "id")
        keep = {"tenant_id", "created_at", "version", *ORIGIN_COLUMNS, *conflict_columns}
        keep.update(update_guard)
        versioned = "version" in table.columns
        return cls(
            table=table,
            conflict_columns=conflict_columns,
            insert_columns=insert,
            update_columns=tuple(c for c in insert if c not in keep),
            returning=("id", "version") if versioned else ("id",),
            version_column="version" if versioned else None,
            update_guard=update_guard,
        )


def inserted_row(target: BulkTarget, shared: Row) -> tuple[Any, ...]:
    """The `returning` values of a row just inserted, as far as known without the database:
    no id, the version every row starts with."""
    return tuple(shared.get(c) for c in target.returning)


class BulkWriter(Protocol):
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
        """Write rows (unique on the conflict columns) in bulk.

        `shared` holds the columns that have one value for every row (tenant, timestamps):
        they are sent once per statement, not once per row. Returns, aligned with `rows`,
        the `returning` columns of each row written (in that order, perhaps followed by
        others), or None for a row that was not written: a conflict under
        `OnConflict.NOTHING`, or an update its `update_guard` refused.

        `stored_ids`: aligned with `rows`, the id under which a locking read in this
        transaction found each row's key stored, None where it found none (None: no read).
        A writer may update those rows by their id and insert the others by a plain insert
        first, or not; a concurrent writer may have stored some of the others since, and the
        result is the same either way.

        `counting`: the caller only counts the rows written, and created from updated (see
        `write_prepared`'s `count_successes`). A writer may then answer a row it inserted
        with `inserted_row(target, shared)` instead of what the database returns.

        `assumed_new`: no read was made, the rows were taken for new (`new_keys_likely`):
        they are inserted as they are, and a stored key raises `StoredKeysMet`, never an
        update of a row its prepare hook did not see.
        """
        ...

    def new_keys_likely(self, table: Table, tenant_id: str) -> bool:
        """Whether a write may skip reading the stored versions of its keys and take them
        for new (`assumed_new`): no write to this table and tenant met stored ones lately."""
        ...

    def met_stored_keys(self, table: Table, tenant_id: str) -> None:
        """A read found keys stored: writes to this table and tenant read first for a while."""
        ...

    async def insert(self, table: Table, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Insert rows that cannot conflict, returning nothing."""
        ...

    def keys_in(
        self,
        query: Select[Any],
        table: Table,
        columns: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        *,
        lock: Lock = None,
    ) -> Select[Any]:
        """The rows of `query` (over `table`) whose `columns` equal one of `keys`, in one
        statement. With `lock`, locked in key order: every lock a batch takes follows that
        order, so that concurrent batches over the same keys queue instead of deadlocking."""
        ...

    async def stored_rows(
        self,
        table: Table,
        columns: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        wanted: Sequence[str],
    ) -> dict[tuple[Any, ...], Row]:
        """The stored rows whose `columns` equal one of `keys`, by key: those columns and the
        `wanted` ones, decoded, but for JSON columns, which come as the text stored (the
        caller decodes what it reads). Locked until commit, in the order of `keys`, which
        callers give sorted and distinct: concurrent writers of the same keys queue instead of
        deadlocking."""
        ...

    async def insert_row(self, table: Table, values: Row) -> int:
        """Insert one row; return the `id` the database gave it."""
        ...

    async def update_row(self, table: Table, row_id: int, values: Row) -> None:
        """Set `values` on the row of this `id`."""
        ...

    async def capture_events(self, job_ref: str | None, at: datetime) -> None:
        """From now until `stop_capturing` (or the transaction's end), changes become events."""
        ...

    async def stop_capturing(self) -> None: ...

    async def claim_events(self, after: int, up_to: int | None, limit: int) -> EventClaim:
        """The next outbox events, oldest first, whole rows until `limit` events (the last
        row may go past it): after both a row id and the relay's position, up to a row id
        (None: no limit)."""
        ...

    async def mark_published(self, through: int, next_rank: int = 0) -> None:
        """Move the relay's position on (never back), in one statement: every row up to the
        id `through`, and the first `next_rank` events of the row after it."""
        ...
