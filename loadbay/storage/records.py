"""Reading stored records of any collection table, always inside one tenant."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.database import WriteUnit


async def find_record(
    conn: AsyncConnection, table: Table, tenant_id: str, record_id: int
) -> Mapping[str, Any] | None:
    query = select(table).where(table.c.id == record_id, table.c.tenant_id == tenant_id)
    return (await conn.execute(query)).mappings().first()


async def list_records(
    conn: AsyncConnection,
    table: Table,
    tenant_id: str,
    *,
    filters: Mapping[str, Any],
    offset: int,
    limit: int,
) -> tuple[list[Mapping[str, Any]], int]:
    """A page in id order, with the total count; `filters` are equality tests on columns."""
    where = [table.c.tenant_id == tenant_id]
    where += [table.c[name] == value for name, value in filters.items()]
    total = (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
    page = await conn.execute(
        select(table).where(*where).order_by(table.c.id).offset(offset).limit(limit)
    )
    return list(page.mappings()), total


async def find_ids(
    unit: WriteUnit, table: Table, tenant_id: str, column: str, values: Iterable[Any]
) -> dict[Any, int]:
    """Row ids by a natural-id column, in one query; rows found are share-locked until commit."""
    wanted = [(value,) for value in set(values)]
    if not wanted:
        return {}
    query = select(table.c[column], table.c.id).where(table.c.tenant_id == tenant_id)
    query = unit.bulk.keys_in(query, table, [column], wanted, lock="share")
    found = await unit.conn.execute(query)
    return {value: row_id for value, row_id in found.all()}
