"""SQL text and value encoding shared by the dialect fast paths."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.types import TypeEngine

from loadbay.storage.bulk import BulkTarget, OnConflict, Row
from loadbay.storage.types import JsonText

Encoder = Callable[[Any], Any]


def names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def returned_columns(target: BulkTarget) -> tuple[str, ...]:
    """RETURNING lists the conflict key too: that is how rows are matched back to input."""
    return (*target.returning, *target.conflict_columns)


def conflict_clause(target: BulkTarget, on_conflict: OnConflict) -> str:
    clause = f"ON CONFLICT ({names(target.conflict_columns)}) "
    if on_conflict is OnConflict.NOTHING:
        return clause + "DO NOTHING"
    sets = [f'"{c}" = EXCLUDED."{c}"' for c in target.update_columns]
    if target.version_column:
        v = target.version_column
        sets.append(f'"{v}" = "{target.table.name}"."{v}" + 1')
    clause += "DO UPDATE SET " + ", ".join(sets)
    if target.update_guard:
        guard = [f'"{target.table.name}"."{c}" = EXCLUDED."{c}"' for c in target.update_guard]
        clause += " WHERE " + " AND ".join(guard)
    return clause


def encode_rows(
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Row],
    encoders: Mapping[type[TypeEngine[Any]], Encoder],
) -> list[tuple[Any, ...]]:
    """Rows as tuples in `columns` order, each value encoded for its column type."""
    pick = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    special = [
        (position, _remembering_last(encoder))
        for position, name in enumerate(columns)
        if (encoder := _encoder_for(table.columns[name].type, encoders)) is not _identity
    ]
    if not special:
        return [pick(row) for row in rows]
    encoded = []
    for row in rows:
        values = list(pick(row))
        for position, encode in special:
            values[position] = encode(values[position])
        encoded.append(tuple(values))
    return encoded


def written_keys(
    target: BulkTarget, columns: Sequence[str], params: Sequence[tuple[Any, ...]], shared: Row
) -> list[tuple[Any, ...]]:
    """Each written row's conflict key from its encoded values: as the database returns it."""
    positions = {c: i for i, c in enumerate(columns)}
    parts = [(positions.get(c), shared.get(c)) for c in target.conflict_columns]
    return [tuple(v if i is None else row[i] for i, v in parts) for row in params]


def align(
    target: BulkTarget, keys: Sequence[tuple[Any, ...]], returned: Iterable[Sequence[Any]]
) -> list[Row | None]:
    """Match RETURNING rows back to the written rows' conflict keys."""
    width = len(target.returning)
    labels = target.returning
    found = {tuple(r[width:]): dict(zip(labels, r, strict=False)) for r in returned}
    return [found.get(key) for key in keys]


def _encoder_for(
    column_type: TypeEngine[Any], encoders: Mapping[type[TypeEngine[Any]], Encoder]
) -> Encoder:
    if isinstance(column_type, JsonText):
        return column_type.raw_encode
    for type_class, encoder in encoders.items():
        if isinstance(column_type, type_class):
            return encoder
    return _identity


def _identity(value: Any) -> Any:
    return value


def _remembering_last(encode: Encoder) -> Encoder:
    """Encode the same object once: a batch shares its timestamps across every row."""
    last_in: Any = object()
    last_out: Any = None

    def encode_once(value: Any) -> Any:
        nonlocal last_in, last_out
        if value is not last_in:
            last_in, last_out = value, encode(value)
        return last_out

    return encode_once
