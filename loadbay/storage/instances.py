"""Instance-specific SQL: hrid counters and the other unique keys (hrid, matchKey)."""

from __future__ import annotations

from collections.abc import Collection as Sized
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage._dialect import upsert_insert
from loadbay.storage._keys import restrict_to
from loadbay.storage.tables import hrid_counters, instances


async def allocate_hrids(conn: AsyncConnection, tenant_id: str, count: int) -> range:
    """`count` consecutive hrid numbers of the tenant's sequence, in one statement."""
    statement = upsert_insert(conn, hrid_counters).values(tenant_id=tenant_id, next_value=count + 1)
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id"],
        set_={"next_value": hrid_counters.c.next_value + count},
    ).returning(hrid_counters.c.next_value)
    next_value = int((await conn.execute(statement)).scalar_one())
    return range(next_value - count, next_value)


async def holders(
    conn: AsyncConnection, tenant_id: str, hrids: Sized[str], match_keys: Sized[str]
) -> list[Mapping[str, Any]]:
    """Stored instances holding any of these hrids or match keys."""
    found: list[Mapping[str, Any]] = []
    for name, wanted in (("hrid", hrids), ("match_key", match_keys)):
        if not wanted:
            continue
        query = select(instances.c.instance_id, instances.c.hrid, instances.c.match_key).where(
            instances.c.tenant_id == tenant_id
        )
        query = restrict_to(query, conn.dialect.name, instances, [name], [(v,) for v in wanted])
        found.extend((await conn.execute(query)).mappings())
    return found


async def find_instance(
    conn: AsyncConnection, tenant_id: str, instance_id: str
) -> Mapping[str, Any] | None:
    query = select(instances).where(
        instances.c.tenant_id == tenant_id, instances.c.instance_id == instance_id
    )
    return (await conn.execute(query)).mappings().first()
