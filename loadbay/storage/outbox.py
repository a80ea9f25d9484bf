"""Outbox rows: written with the records, claimed by the relay, read by the feed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.feed_horizon import committed_up_to
from loadbay.storage.tables import outbox, outbox_pending


async def add_events(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Events written from Python (a few: deletions), pending like the captured ones."""
    if rows:
        ids = (await conn.execute(insert(outbox).returning(outbox.c.id), list(rows))).scalars()
        await conn.execute(insert(outbox_pending), [{"id": i} for i in ids])


async def prune_published(conn: AsyncConnection, created_before: datetime) -> int:
    """Delete the published events written before a time; pending ones stay, however old."""
    pending = exists().where(outbox_pending.c.id == outbox.c.id)
    pruned = await conn.execute(
        delete(outbox).where(outbox.c.created_at < created_before, ~pending)
    )
    return pruned.rowcount


async def drop_unlisted_ids(conn: AsyncConnection) -> int:
    """Take off the pending list the ids that name no event.

    Every id is written with its event, and pruning keeps pending events; but an event
    deleted another way (by hand, say) would leave its id, claimed by every round and never
    published: at the head of the list, a batch of them would hold the relay still. A
    foreign key would rule that out at 13 us an event written; this costs a scan of the list
    at each prune.
    """
    named = exists().where(outbox.c.id == outbox_pending.c.id)
    return (await conn.execute(delete(outbox_pending).where(~named))).rowcount


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
    """How many events wait to be published, and when the first of them (by id) was written;
    in one statement, so that the two agree."""
    first = select(func.min(outbox_pending.c.id)).scalar_subquery()
    oldest = select(outbox.c.created_at).where(outbox.c.id == first).scalar_subquery()
    query = select(func.count(), oldest).select_from(outbox_pending)
    count, created_at = (await conn.execute(query)).one()
    return int(count), created_at
