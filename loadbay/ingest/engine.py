"""The generic write path: validate, dedupe, sort, write in bulk, report every record."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from loadbay.ingest.collection import Collection
from loadbay.ingest.fields import RecordInvalid
from loadbay.ingest.results import UNIQUE_VIOLATION, Outcome, RecordResult
from loadbay.storage.bulk import OnConflict
from loadbay.storage.database import WriteUnit

T = TypeVar("T")


@dataclass(slots=True)
class _Pending:
    index: int
    payload: Any
    row: dict[str, Any]
    # Earlier records of the batch with the same key, overwritten by this one (upsert only).
    superseded: list[int] = field(default_factory=list)


async def write_records(
    unit: WriteUnit,
    collection: Collection,
    tenant_id: str,
    records: Sequence[tuple[int, Any]],
    *,
    upsert: bool,
    chunk_size: int,
    now: datetime,
) -> list[RecordResult]:
    """Write `(index, record)` pairs; return one result per record, in index order.

    Insert-only: a key already stored, or taken by an earlier record of the batch, fails the
    record with `unique_constraint_violation`. Upsert: the last record of a key wins.
    The caller owns the transaction.
    """
    results: dict[int, RecordResult] = {}
    pending: dict[tuple[Any, ...], _Pending] = {}
    for index, payload in records:
        try:
            row = collection.validate(payload)
        except RecordInvalid as invalid:
            results[index] = _failed(index, invalid.code, invalid.message, payload)
            continue
        key = tuple(row[k] for k in collection.key)
        earlier = pending.get(key)
        if earlier is not None and not upsert:
            message = f"{collection.conflict_message} (same key as record {earlier.index})"
            results[index] = _failed(index, UNIQUE_VIOLATION, message, payload)
            continue
        row.update(tenant_id=tenant_id, version=1, created_at=now, updated_at=now)
        superseded = [*earlier.superseded, earlier.index] if earlier else []
        pending[key] = _Pending(index, payload, row, superseded)

    on_conflict = OnConflict.UPDATE if upsert else OnConflict.NOTHING
    # Sorted keys: concurrent batches take row locks in one order and cannot deadlock.
    for chunk in _chunks(sorted(pending.items(), key=lambda item: item[0]), chunk_size):
        written = await unit.bulk.write(collection.target, [p.row for _, p in chunk], on_conflict)
        for (_, record), returned in zip(chunk, written, strict=True):
            if returned is None:
                results[record.index] = _failed(
                    record.index, UNIQUE_VIOLATION, collection.conflict_message, record.payload
                )
                continue
            outcome = Outcome.CREATED if returned["version"] == 1 else Outcome.UPDATED
            record_id = collection.ids.format(returned["id"])
            for index in (*record.superseded, record.index):
                results[index] = RecordResult(index, outcome, record_id)
    return [results[index] for index in sorted(results)]


def _failed(index: int, code: str, message: str, payload: Any) -> RecordResult:
    return RecordResult(index, Outcome.FAILED, error=code, message=message, payload=payload)


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
