"""A collection: one kind of record, described once and written by the generic engine."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy import Table

from loadbay.ingest.ids import IdCodec
from loadbay.outcomes import RecordError
from loadbay.storage.bulk import BulkTarget


class ConflictMode(Enum):
    """What a record whose key is already stored (or earlier in its batch) does."""

    FAIL = "fail"  # fails with the collection's conflict code; the first record wins
    IGNORE = "ignore"  # succeeds without writing: the stored record stands (idempotent insert)
    UPDATE = "update"  # updates the stored record; the last record of a batch wins


class ChunkHook(Protocol):
    async def __call__(
        self,
        unit: Any,
        tenant_id: str,
        rows: list[dict[str, Any]],
        stored: list[Mapping[str, Any] | None],
    ) -> dict[int, Any]:
        """Failures (RecordInvalid) by position in `rows`; may change the other rows.

        `stored` is each row's stored version (None where its key is not stored)."""
        ...


class WrittenHook(Protocol):
    async def __call__(self, unit: Any, tenant_id: str, rows: list[dict[str, Any]]) -> None:
        """Runs in the chunk's transaction with the rows just written."""
        ...


@dataclass(frozen=True)
class Reference:
    """A record names another by a natural id; the engine resolves it, set-wise, per chunk."""

    table: Table
    source: str  # this record's column holding the natural id
    lookup: str  # the referenced table's column it matches
    target: str  # this record's column that receives the referenced row's id
    error_code: RecordError
    message: str


@dataclass(frozen=True)
class Collection:
    name: str
    target: BulkTarget
    # The natural key inside a tenant; the engine dedupes, sorts and conflicts on it.
    key: tuple[str, ...]
    # Returns the record's column values or raises RecordInvalid.
    validate: Callable[[Any], dict[str, Any]]
    ids: IdCodec
    on_conflict: ConflictMode
    conflict_code: RecordError
    conflict_message: str
    reference: Reference | None = None
    # A column that receives each record's index in its batch, to read records in sent order.
    position_column: str | None = None
    # Rows record the job and index that created them (ORIGIN_JOB, ORIGIN_INDEX), so that a
    # job's results for created records need no rows of their own.
    records_origin: bool = False

    # Per chunk, after the stored versions are read (locked): adjust rows or fail some of them.
    prepare: ChunkHook | None = None
    # The stored columns `prepare` reads, beside the key.
    stored_columns: tuple[str, ...] = ()
    # Per chunk, after its rows are written: what else belongs to them (instance title links).
    after_write: WrittenHook | None = None
    # What a chunk's rows may share with rows of another chunk besides their natural keys: the
    # records they link (their natural keys, as tuples) and their unique values. Chunks
    # written at once that share anything commit in order.
    shares: Callable[[list[dict[str, Any]]], Iterable[Hashable]] | None = None

    def touched(self, rows: Iterable[dict[str, Any]]) -> set[Hashable]:
        """Everything these rows write or depend on that another chunk's rows could too."""
        rows = list(rows)
        # Keys as tuples, whatever their width: `shares` names linked records that way.
        if len(self.key) == 1:
            (column,) = self.key
            touched: set[Hashable] = {(row[column],) for row in rows}
        else:
            key_of = itemgetter(*self.key)
            touched = {key_of(row) for row in rows}
        if self.shares is not None:
            touched.update(self.shares(rows))
        return touched

    def __post_init__(self) -> None:
        # Results read back from origin columns know one record per row: no followers.
        if self.records_origin and self.on_conflict is not ConflictMode.FAIL:
            raise ValueError(f"{self.name}: records_origin needs ConflictMode.FAIL")
        # The stored versions are read, and locked, in the order of the chunk's rows, which is
        # sorted by `key`: that is the stored rows' lock order only if `key` is what they
        # conflict on.
        if self.prepare is not None and self.target.conflict_columns != ("tenant_id", *self.key):
            raise ValueError(f"{self.name}: prepare needs `key` to be the conflict key")
