"""The generic write path: validate, dedupe, sort, resolve, write in bulk, report each record."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from loadbay.events.outbox import EventContext, EventType, outbox_row, record_key, record_view
from loadbay.ingest.collection import Collection, ConflictMode, Reference
from loadbay.ingest.fields import RecordInvalid
from loadbay.ingest.results import Outcome, RecordResult
from loadbay.storage import outbox
from loadbay.storage.bulk import OnConflict
from loadbay.storage.database import WriteUnit
from loadbay.storage.records import find_ids, find_rows_by_keys

T = TypeVar("T")

_ON_CONFLICT = {
    ConflictMode.FAIL: OnConflict.NOTHING,
    ConflictMode.IGNORE: OnConflict.NOTHING,
    ConflictMode.UPDATE: OnConflict.UPDATE,
}


@dataclass(slots=True)
class _Pending:
    """The record written for one key, and the other records of the batch sharing its fate."""

    index: int
    payload: Any
    row: dict[str, Any]
    followers: list[int] = field(default_factory=list)


async def write_records(
    unit: WriteUnit,
    collection: Collection,
    tenant_id: str,
    records: Sequence[tuple[int, Any]],
    *,
    mode: ConflictMode,
    chunk_size: int,
    now: datetime,
    events: EventContext | None = None,
) -> list[RecordResult]:
    """Write `(index, record)` pairs; return one result per record, in index order.

    With `events`, every record created or updated adds a domain event to the outbox, in
    the same transaction. The caller owns the transaction: nothing here commits.
    """
    results: dict[int, RecordResult] = {}
    pending = _validate_and_dedupe(collection, tenant_id, records, mode, now, results)
    # Sorted keys: concurrent batches take row locks in one order and cannot deadlock.
    ordered = sorted(pending.items(), key=lambda item: item[0])
    for chunk in _chunks([record for _, record in ordered], chunk_size):
        if collection.reference is not None:
            chunk = await _resolve(unit, collection.reference, tenant_id, chunk, results)
        if not chunk:
            continue
        rows = [record.row for record in chunk]
        # The stored versions, for update events and the collection's hook: one locking read.
        needs_stored = collection.prepare is not None or (
            events is not None and mode is ConflictMode.UPDATE
        )
        previous = await _stored_versions(unit, collection, rows) if needs_stored else {}
        if collection.prepare is not None:
            refused = await collection.prepare(unit, tenant_id, rows, previous)
            for position, invalid in refused.items():
                _fail_key(chunk[position], invalid.code, invalid.message, results)
            chunk = [record for p, record in enumerate(chunk) if p not in refused]
            rows = [record.row for record in chunk]
            if not chunk:
                continue
        written = await unit.bulk.write(collection.target, rows, _ON_CONFLICT[mode])
        for record, returned in zip(chunk, written, strict=True):
            _report(collection, mode, record, returned, results)
        if events is not None:
            changes = _outbox_rows(collection, tenant_id, rows, written, previous, events, now)
            await outbox.add_events(unit, changes)
    return [results[index] for index in sorted(results)]


async def _stored_versions(
    unit: WriteUnit, collection: Collection, rows: list[dict[str, Any]]
) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    columns = collection.target.conflict_columns
    keys = [tuple(row[c] for c in columns) for row in rows]
    return await find_rows_by_keys(unit.conn, collection.target.table, columns, keys)


def _outbox_rows(
    collection: Collection,
    tenant_id: str,
    rows: list[dict[str, Any]],
    written: list[Any],
    previous: Mapping[tuple[Any, ...], Mapping[str, Any]],
    context: EventContext,
    now: datetime,
) -> list[dict[str, Any]]:
    target = collection.target
    view = collection.event_view or (lambda row: record_view(collection, row))
    changes = []
    for row, returned in zip(rows, written, strict=True):
        if returned is None:
            continue
        old = previous.get(tuple(row[c] for c in target.conflict_columns))
        if returned.get("version", 1) == 1:
            event_type, new, old = EventType.CREATE, {**row, **returned}, None
        else:
            # What the upsert changed, over what was stored (creation time and keys stay).
            changed = {c: row[c] for c in target.update_columns}
            event_type, new = EventType.UPDATE, {**(old or row), **changed, **returned}
        changes.append(
            outbox_row(
                collection=collection.name,
                tenant_id=tenant_id,
                key=record_key(collection, row),
                event_type=event_type,
                new=view(new),
                old=view(old) if old is not None else None,
                context=context,
                now=now,
            )
        )
    return changes


def _validate_and_dedupe(
    collection: Collection,
    tenant_id: str,
    records: Sequence[tuple[int, Any]],
    mode: ConflictMode,
    now: datetime,
    results: dict[int, RecordResult],
) -> dict[tuple[Any, ...], _Pending]:
    pending: dict[tuple[Any, ...], _Pending] = {}
    versioned = collection.target.version_column is not None
    for index, payload in records:
        try:
            row = collection.validate(payload)
        except RecordInvalid as invalid:
            results[index] = _failed(index, invalid.code, invalid.message, payload)
            continue
        key = tuple(row[k] for k in collection.key)
        earlier = pending.get(key)
        if earlier is not None and mode is ConflictMode.FAIL:
            message = f"{collection.conflict_message} (same key as record {earlier.index})"
            results[index] = _failed(index, collection.conflict_code, message, payload)
            continue
        if earlier is not None and mode is ConflictMode.IGNORE:
            earlier.followers.append(index)
            continue
        row["tenant_id"] = tenant_id
        row["created_at"] = now
        if collection.position_column:
            row[collection.position_column] = index
        if versioned:
            row["version"] = 1
            row["updated_at"] = now
        followers = [*earlier.followers, earlier.index] if earlier else []
        pending[key] = _Pending(index, payload, row, followers)
    return pending


async def _resolve(
    unit: WriteUnit,
    reference: Reference,
    tenant_id: str,
    chunk: list[_Pending],
    results: dict[int, RecordResult],
) -> list[_Pending]:
    """Fill in referenced ids; records naming nothing stored fail, with their followers."""
    names = {record.row[reference.source] for record in chunk}
    found = await find_ids(unit.conn, reference.table, tenant_id, reference.lookup, names)
    resolved = []
    for record in chunk:
        referenced = found.get(record.row[reference.source])
        if referenced is None:
            _fail_key(record, reference.error_code, reference.message, results)
            continue
        record.row[reference.target] = referenced
        resolved.append(record)
    return resolved


def _report(
    collection: Collection,
    mode: ConflictMode,
    record: _Pending,
    returned: Any,
    results: dict[int, RecordResult],
) -> None:
    if returned is None and mode is ConflictMode.IGNORE:
        outcome, record_id = Outcome.UNCHANGED, None
    elif returned is None:
        _fail_key(record, collection.conflict_code, collection.conflict_message, results)
        return
    else:
        outcome = Outcome.CREATED if returned.get("version", 1) == 1 else Outcome.UPDATED
        record_id = collection.ids.format(returned["id"])
    for index in (*record.followers, record.index):
        results[index] = RecordResult(index, outcome, record_id)


def _fail_key(record: _Pending, code: str, message: str, results: dict[int, RecordResult]) -> None:
    """Fail the record written for a key, and the records of the batch that share its fate."""
    for index in (*record.followers, record.index):
        results[index] = _failed(index, code, message, record.payload)


def _failed(index: int, code: str, message: str, payload: Any) -> RecordResult:
    return RecordResult(index, Outcome.FAILED, error=code, message=message, payload=payload)


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
