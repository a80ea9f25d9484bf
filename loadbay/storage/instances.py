"""Instance-specific SQL: hrid counters and the other unique keys (hrid, matchKey)."""

from __future__ import annotations

import functools
from collections.abc import Collection as Sized
from collections.abc import Mapping
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from loadbay.storage.database import WriteUnit
from loadbay.storage.kinds import DatabaseKind, kind_of
from loadbay.storage.tables import hrid_counters, instance_title_links, instances


async def allocate_hrids(conn: AsyncConnection, tenant_id: str, count: int) -> range:
    """`count` consecutive hrid numbers of the tenant's sequence, in one statement."""
    parameters = {"tenant_id": tenant_id, "next_value": count + 1, "count": count}
    result = await conn.execute(_allocation(kind_of(conn)), parameters)
    next_value = int(result.scalar_one())
    return range(next_value - count, next_value)


# Statements run for every chunk of a file are built once: building one took about as much
# CPU as running it (200-300 us), a few percent of the server's CPU a line.
@functools.cache
def _allocation(kind: DatabaseKind) -> Any:
    # The VALUES from the parameters' names (tenant_id, next_value).
    return (
        kind.upsert_insert(hrid_counters)
        .on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={"next_value": hrid_counters.c.next_value + bindparam("count")},
        )
        .returning(hrid_counters.c.next_value)
    )


async def holders(
    unit: WriteUnit, tenant_id: str, hrids: Sized[str], match_keys: Sized[str]
) -> list[Mapping[str, Any]]:
    """Stored instances holding any of these hrids or match keys."""
    found: list[Mapping[str, Any]] = []
    for name, wanted in (("hrid", hrids), ("match_key", match_keys)):
        if not wanted:
            continue
        query = unit.bulk.keys_in(_holders(tenant_id), instances, [name], [(v,) for v in wanted])
        found.extend((await unit.conn.execute(query)).mappings())
    return found


async def hrid_holders_between(
    conn: AsyncConnection, tenant_id: str, lowest: str, highest: str
) -> list[Mapping[str, Any]]:
    """Stored instances whose hrid sorts between these two: one range scan of its index."""
    parameters = {"tenant_id": tenant_id, "lowest": lowest, "highest": highest}
    return list((await conn.execute(_HRID_HOLDERS_BETWEEN, parameters)).mappings())


def _holders(tenant_id: str | BindParameter[str]) -> Select[Any]:
    """The tenant's instances, as who holds which hrid and matchKey."""
    return select(instances.c.instance_id, instances.c.hrid, instances.c.match_key).where(
        instances.c.tenant_id == tenant_id
    )


_HRID_HOLDERS_BETWEEN = _holders(bindparam("tenant_id")).where(
    instances.c.hrid.between(bindparam("lowest"), bindparam("highest"))
)


async def find_instance(
    conn: AsyncConnection, tenant_id: str, instance_id: str
) -> Mapping[str, Any] | None:
    query = select(instances).where(
        instances.c.tenant_id == tenant_id, instances.c.instance_id == instance_id
    )
    return (await conn.execute(query)).mappings().first()


async def stored_instance_ids(
    unit: WriteUnit, tenant_id: str, instance_ids: Sized[str]
) -> set[str]:
    """Those of `instance_ids` the tenant has stored."""
    if not instance_ids:
        return set()
    query = select(instances.c.instance_id).where(instances.c.tenant_id == tenant_id)
    query = unit.bulk.keys_in(query, instances, ["instance_id"], [(i,) for i in instance_ids])
    return set((await unit.conn.execute(query)).scalars())


_LINK_COLUMNS = tuple(c.name for c in instance_title_links.columns if c.name != "id")


async def replace_title_links(
    unit: WriteUnit, tenant_id: str, instance_ids: Sized[str], links: list[dict[str, Any]]
) -> None:
    """The links touching these instances become `links`: two statements per chunk."""
    await unit.conn.execute(delete(instance_title_links).where(*_touching(tenant_id, instance_ids)))
    if links:
        rows = [{**link, "tenant_id": tenant_id} for link in links]
        await unit.bulk.insert(instance_title_links, _LINK_COLUMNS, rows)


async def title_links(
    conn: AsyncConnection, tenant_id: str, instance_ids: Sized[str]
) -> list[Mapping[str, Any]]:
    """Every link with one of these instances at either end, in the order they were written."""
    if not instance_ids:
        return []
    query = (
        select(instance_title_links)
        .where(*_touching(tenant_id, instance_ids))
        .order_by(instance_title_links.c.id)
    )
    return list((await conn.execute(query)).mappings())


def _touching(tenant_id: str, instance_ids: Sized[str]) -> tuple[ColumnElement[bool], ...]:
    table, wanted = instance_title_links, list(instance_ids)
    either_end = or_(
        table.c.preceding_instance_id.in_(wanted), table.c.succeeding_instance_id.in_(wanted)
    )
    return (table.c.tenant_id == tenant_id, either_end)
