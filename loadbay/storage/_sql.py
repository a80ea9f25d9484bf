"""SQL text and value encoding shared by the dialect fast paths."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Table
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
    return clause + "DO UPDATE SET " + ", ".join(sets)


def encode_rows(
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Row],
    encoders: Mapping[type[TypeEngine[Any]], Encoder],
) -> list[tuple[Any, ...]]:
    """Rows as tuples in `columns` order, each value encoded for its column type."""
    encode = [_encoder_for(table.columns[c].type, encoders) for c in columns]
    return [tuple(enc(row[c]) for c, enc in zip(columns, encode, strict=True)) for row in rows]


def align(
    target: BulkTarget, written: Sequence[tuple[Any, ...]], returned: Iterable[Sequence[Any]]
) -> list[Row | None]:
    """Match RETURNING rows back to the written rows by their conflict key."""
    width = len(target.returning)
    rows = [tuple(r) for r in returned]
    found = {r[width:]: dict(zip(target.returning, r, strict=False)) for r in rows}
    key_positions = [target.insert_columns.index(c) for c in target.conflict_columns]
    return [found.get(tuple(row[i] for i in key_positions)) for row in written]


def encode_json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _encoder_for(
    column_type: TypeEngine[Any], encoders: Mapping[type[TypeEngine[Any]], Encoder]
) -> Encoder:
    for type_class, encoder in encoders.items():
        if isinstance(column_type, type_class):
            return encoder
    return _identity


def _identity(value: Any) -> Any:
    return value


JSON_ENCODERS: Mapping[type[TypeEngine[Any]], Encoder] = {JSON: encode_json, JsonText: encode_json}
