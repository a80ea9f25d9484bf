"""SQL text and value encoding shared by the dialect fast paths."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Dialect, Select, Table
from sqlalchemy.types import TypeEngine

from loadbay.storage.bulk import BulkTarget, Lock, OnConflict, Row
from loadbay.storage.types import JsonText

Encoder = Callable[[Any], Any]


def names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def matched_columns(target: BulkTarget, shared: Container[str]) -> tuple[str, ...]:
    """The conflict columns that differ from row to row: they match returned rows to input."""
    return tuple(c for c in target.conflict_columns if c not in shared)


def returned_columns(target: BulkTarget, shared: Container[str]) -> tuple[str, ...]:
    """RETURNING lists the matched key too: that is how rows are matched back to input."""
    return (*target.returning, *matched_columns(target, shared))


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


class StoredRead(NamedTuple):
    """What a read of stored rows by key sends and selects (see BulkWriter.stored_rows)."""

    # Key columns with one value for every key (the tenant), and the others' values.
    fixed: dict[str, Any]
    varying: dict[str, list[Any]]
    # The key columns, then the wanted ones.
    selected: tuple[str, ...]


def stored_read(
    columns: Sequence[str], keys: Sequence[tuple[Any, ...]], wanted: Sequence[str]
) -> StoredRead:
    fixed = {c: keys[0][i] for i, c in enumerate(columns) if all(k[i] == keys[0][i] for k in keys)}
    varying = {c: [k[i] for k in keys] for i, c in enumerate(columns) if c not in fixed}
    selected = (*columns, *(c for c in wanted if c not in columns))
    return StoredRead(fixed, varying, selected)


def tuple_getter(items: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """`itemgetter(*items)`, but a tuple also for one item."""
    if len(items) == 1:
        (item,) = items
        return lambda row: (row[item],)
    return itemgetter(*items)


def stored_by_key(
    table: Table,
    columns: Sequence[str],
    selected: tuple[str, ...],
    dialect: Dialect,
    found: Iterable[Sequence[Any]],
    *,
    by_name: bool = False,
) -> dict[tuple[Any, ...], Row]:
    """The driver's rows of `selected` columns, by their values of `columns` (which
    `selected` includes): decoded as SQLAlchemy reads them, but for JSON columns, which stay
    the text stored (see BulkWriter.stored_rows). With `by_name`, the driver's rows are
    mappings by column name already (asyncpg's Records): where nothing needs decoding, they
    are the rows."""
    decoders = _decoders(table, selected, dialect)
    key_of = tuple_getter(columns)
    if by_name and not decoders:
        # A dict per row was 1.0 us of 1.4 a row, for a re-load's instances.
        return {key_of(row): row for row in found}  # type: ignore[misc]
    stored = {}
    for values in found:
        # The rows have the `selected` columns: a strict zip's final check was a third of
        # the cost of this line, per row.
        row = dict(zip(selected, values, strict=False))
        for name, decode in decoders:
            row[name] = decode(row[name])
        stored[key_of(row)] = row
    return stored


# Bounded: keyed by the dialect object, of which every Database has its own.
@lru_cache(maxsize=256)
def _decoders(
    table: Table, selected: tuple[str, ...], dialect: Dialect
) -> list[tuple[str, Callable[[Any], Any]]]:
    return [
        (name, decode)
        for name in selected
        if (decode := _result_processor(table.columns[name].type, dialect)) is not None
    ]


def _result_processor(column_type: TypeEngine[Any], dialect: Dialect) -> Encoder | None:
    if isinstance(column_type, JsonText):
        return None  # its reader decodes it, where it needs the value
    # The dialect's own implementation of the type: SQLite's parses the text it stores.
    return column_type.dialect_impl(dialect).result_processor(dialect, None)  # type: ignore[no-any-return]


def encode_rows(
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Row],
    encoders: Mapping[type[TypeEngine[Any]], Encoder],
) -> list[tuple[Any, ...]]:
    """Rows as tuples in `columns` order, each value encoded for its column type."""
    pick = tuple_getter(columns)
    special = [
        (position, encoder)
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


def encode_columns(
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    encoders: Mapping[type[TypeEngine[Any]], Encoder],
) -> list[list[Any]]:
    """The rows as one list per column, in `columns` order, each value encoded for its
    column type: what array parameters take, without a tuple per row on the way."""
    arrays = []
    for name in columns:
        values = [row[name] for row in rows]
        encoder = _encoder_for(table.columns[name].type, encoders)
        arrays.append(values if encoder is _identity else list(map(encoder, values)))
    return arrays


def column_keys(
    target: BulkTarget, columns: Sequence[str], shared: Container[str], arrays: list[list[Any]]
) -> Sequence[Any]:
    """Each row's matched key (`matched_columns`), as `align` takes them, from the rows'
    column lists (`encode_columns`)."""
    keyed = [arrays[columns.index(c)] for c in matched_columns(target, shared)]
    return keyed[0] if len(keyed) == 1 else list(zip(*keyed, strict=True))


def align(
    target: BulkTarget,
    shared: Container[str],
    keys: Sequence[Any],
    returned: Iterable[Sequence[Any]],
) -> list[Sequence[Any] | None]:
    """Match RETURNING rows (`returned_columns`) back to the written rows, whose matched keys
    are `keys` (one value each, or a tuple of several), as the database returns them."""
    width = len(target.returning)
    if len(matched_columns(target, shared)) == 1:
        found = {r[width]: r for r in returned}
    else:
        found = {tuple(r[width:]): r for r in returned}
    return [found.get(key) for key in keys]


def _encoder_for(
    column_type: TypeEngine[Any], encoders: Mapping[type[TypeEngine[Any]], Encoder]
) -> Encoder:
    if isinstance(column_type, JsonText):
        return column_type.raw_encode
    for type_class, encoder in encoders.items():
        if isinstance(column_type, type_class):
            return _remembering_last(encoder)
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


def locked(query: Select[Any], table: Table, lock: Lock) -> Select[Any]:
    """`query`, its rows of `table` locked as `lock` says (see `BulkWriter.keys_in`)."""
    if lock is None:
        return query
    return query.with_for_update(read=lock == "share", of=table)
