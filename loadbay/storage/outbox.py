"""Outbox rows: written with the records, claimed by the relay, read by the feed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.database import WriteUnit
from loadbay.storage.tables import outbox

COLUMNS = (
    "tenant_id",
    "collection",
    "record_key",
    "event_id",
    "event_type",
    "payload",
    "created_at",
    "published_at",
)


async def add_events(unit: WriteUnit, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        await unit.bulk.insert(outbox, COLUMNS, rows)


async def prune_published(conn: AsyncConnection, published_before: datetime) -> int:
    pruned = await conn.execute(delete(outbox).where(outbox.c.published_at < published_before))
    return pruned.rowcount


async def feed(
    conn: AsyncConnection, tenant_id: str, *, collection: str | None, after: int, limit: int
) -> list[Mapping[str, Any]]:
    query = select(outbox.c.id, outbox.c.payload).where(
        outbox.c.tenant_id == tenant_id, outbox.c.id > after
    )
    if collection is not None:
        query = query.where(outbox.c.collection == collection)
    return list((await conn.execute(query.order_by(outbox.c.id).limit(limit))).mappings())


async def lag(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many events wait to be published, and when the oldest of them was written."""
    query = select(func.count(), func.min(outbox.c.created_at)).where(
        outbox.c.published_at.is_(None)
    )
    count, oldest = (await conn.execute(query)).one()
    return int(count), oldest
