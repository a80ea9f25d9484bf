"""Tenants: every row belongs to one."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.tables import tenants
from loadbay.storage.types import utcnow


async def ensure_tenant(conn: AsyncConnection, tenant_id: str, name: str) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        insert(tenants)
        .values(id=tenant_id, name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )
