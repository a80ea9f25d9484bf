"""Outbox rows: written with the records, claimed by the relay, read by the feed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.feed_horizon import committed_up_to
from loadbay.storage.tables import outbox, relay_position


async def add_events(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Events written from Python (a few: deletions); the relay reads them like the others."""
    if rows:
        await conn.execute(insert(outbox), list(rows))


def _published_through() -> ColumnElement[int]:
    """The relay's position; 0 without its row (a table emptied by hand): all is pending."""
    return func.coalesce(select(relay_position.c.published_through).scalar_subquery(), 0)


async def prune_published(conn: AsyncConnection, created_before: datetime) -> int:
    """Delete the published events written before a time; pending ones stay, however old."""
    pruned = await conn.execute(
        delete(outbox).where(
            outbox.c.created_at < created_before, outbox.c.id <= _published_through()
        )
    )
    return pruned.rowcount


async def feed(
    conn: AsyncConnection, tenant_id: str, *, collection: str | None, after: int, limit: int
) -> list[Mapping[str, Any]]:
    """The tenant's events after an id, oldest first: only those no event still to commit
    precedes, so that a cursor never passes one (see feed_horizon)."""
    horizon = await committed_up_to(conn)
    query = select(outbox.c.id, outbox.c.payload).where(
        outbox.c.tenant_id == tenant_id, outbox.c.id > after
    )
    if horizon is not None:
        query = query.where(outbox.c.id <= horizon)
    if collection is not None:
        query = query.where(outbox.c.collection == collection)
    return list((await conn.execute(query.order_by(outbox.c.id).limit(limit))).mappings())


async def lag(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many events wait to be published, and when the oldest of them was written; in one
    statement, so that the two agree."""
    query = select(func.count(), func.min(outbox.c.created_at)).where(
        outbox.c.id > _published_through()
    )
    count, created_at = (await conn.execute(query)).one()
    return int(count), created_at
