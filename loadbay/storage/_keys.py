"""Restricting a query to a set of key values, in one statement, fast on both dialects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Select, Table, bindparam, func, select, true, tuple_
from sqlalchemy.dialects.postgresql import ARRAY

Lock = Literal["share", "update"] | None


def restrict_to(
    query: Select[Any],
    dialect: str,
    table: Table,
    columns: Sequence[str],
    keys: Sequence[tuple[Any, ...]],
    *,
    lock: Lock = None,
) -> Select[Any]:
    """The rows of `query` (over `table`) whose `columns` equal one of `keys`.

    With `lock`, the rows are locked, in key order: every lock a batch takes follows that
    order, so that concurrent batches over the same keys queue instead of deadlocking.

    PostgreSQL probes the table's index once per key: a LATERAL subquery over `unnest()` of
    one array per column. A plain join leaves the choice to the planner, whose estimates for
    a table loaded without ANALYZE are stale: it sorted or hashed every row of the tenant for
    each chunk (400 ms per 1,000 keys at 200,000 rows). SQLite takes an `IN` list.
    """
    if dialect != "postgresql":
        if len(columns) == 1:
            query = query.where(table.c[columns[0]].in_({key[0] for key in keys}))
        else:
            query = query.where(tuple_(*(table.c[n] for n in columns)).in_(list(set(keys))))
        return _locked(query.order_by(*(table.c[n] for n in columns)), table, lock)
    arrays = [
        bindparam(None, [key[i] for key in keys], type_=ARRAY(table.c[name].type))
        for i, name in enumerate(columns)
    ]
    unnested = func.unnest(*arrays).table_valued(*columns).render_derived(name="unnested")
    # Sorted (and deduplicated) here, so that the nested loop below visits keys in order.
    wanted = select(unnested).distinct().order_by(*unnested.c).subquery("wanted")
    matches = query.where(*(table.c[n] == wanted.c[n] for n in columns))
    found = _locked(matches, table, lock).lateral("found")
    return select(found).select_from(wanted).join(found, true()).order_by(*wanted.c)


def _locked(query: Select[Any], table: Table, lock: Lock) -> Select[Any]:
    if lock is None:
        return query
    return query.with_for_update(read=lock == "share", of=table)
