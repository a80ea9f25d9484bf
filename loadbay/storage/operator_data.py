"""Reads and erasure of operator data: templates, entities with their states and events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.kinds import kind_of
from loadbay.storage.tables import entities, erasures, events, states, tenant_settings


async def find_template(conn: AsyncConnection, tenant_id: str) -> Mapping[str, Any] | None:
    query = select(tenant_settings).where(tenant_settings.c.tenant_id == tenant_id)
    return (await conn.execute(query)).mappings().first()


async def save_template(
    conn: AsyncConnection, tenant_id: str, template_id: str, template: Any, now: datetime
) -> None:
    statement = (
        kind_of(conn)
        .upsert_insert(tenant_settings)
        .values(tenant_id=tenant_id, template_id=template_id, template=template, updated_at=now)
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={
                "template_id": template_id,
                "template": statement.excluded.template,
                "updated_at": now,
            },
        )
    )


async def find_entity(
    conn: AsyncConnection, tenant_id: str, entity_type: str, external_id: str
) -> Mapping[str, Any] | None:
    query = select(entities).where(
        entities.c.tenant_id == tenant_id,
        entities.c.entity_type == entity_type,
        entities.c.external_id == external_id,
    )
    return (await conn.execute(query)).mappings().first()


async def entity_states(conn: AsyncConnection, entity_id: int) -> list[Mapping[str, Any]]:
    query = select(states).where(states.c.entity_id == entity_id).order_by(states.c.state_key)
    return list((await conn.execute(query)).mappings())


async def entity_events(
    conn: AsyncConnection, entity_id: int, *, offset: int, limit: int
) -> tuple[list[Mapping[str, Any]], int]:
    where = events.c.entity_id == entity_id
    total = (await conn.execute(select(func.count()).select_from(events).where(where))).scalar_one()
    page = await conn.execute(
        select(events)
        .where(where)
        .order_by(events.c.created_at, events.c.position, events.c.id)
        .offset(offset)
        .limit(limit)
    )
    return list(page.mappings()), total


async def erase_entity(
    conn: AsyncConnection, tenant_id: str, entity: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Delete an entity with its states and events; record that it was erased."""
    erased_events = await conn.execute(delete(events).where(events.c.entity_id == entity["id"]))
    erased_states = await conn.execute(delete(states).where(states.c.entity_id == entity["id"]))
    await conn.execute(delete(entities).where(entities.c.id == entity["id"]))
    record = {
        "tenant_id": tenant_id,
        "entity_type": entity["entity_type"],
        "external_id": entity["external_id"],
        "events_erased": erased_events.rowcount,
        "states_erased": erased_states.rowcount,
        "erased_at": now,
    }
    await conn.execute(insert(erasures).values(**record))
    return record
