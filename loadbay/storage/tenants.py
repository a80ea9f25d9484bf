"""Tenants: every row belongs to one."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.kinds import kind_of
from loadbay.storage.tables import tenants
from loadbay.storage.types import utcnow


async def ensure_tenant(conn: AsyncConnection, tenant_id: str, name: str) -> None:
    await conn.execute(
        kind_of(conn)
        .upsert_insert(tenants)
        .values(id=tenant_id, name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )
