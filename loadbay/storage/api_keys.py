"""API key rows: stored by hash, listed by prefix."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.tables import api_keys


async def insert_key(conn: AsyncConnection, values: Mapping[str, Any]) -> int:
    inserted = await conn.execute(insert(api_keys).values(**values).returning(api_keys.c.id))
    return int(inserted.scalar_one())


async def find_by_hash(conn: AsyncConnection, key_hash: str) -> Mapping[str, Any] | None:
    query = select(api_keys).where(api_keys.c.key_hash == key_hash)
    return (await conn.execute(query)).mappings().first()


async def list_keys(conn: AsyncConnection, tenant_id: str | None) -> list[Mapping[str, Any]]:
    query = select(api_keys).order_by(api_keys.c.id)
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    return list((await conn.execute(query)).mappings())


async def count_keys(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(api_keys))).scalar_one())


async def revoke_by_prefix(conn: AsyncConnection, prefix: str, now: datetime) -> int:
    revoked = await conn.execute(
        update(api_keys)
        .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return revoked.rowcount
