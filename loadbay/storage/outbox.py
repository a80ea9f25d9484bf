"""Outbox rows: written with the records, claimed by the relay, read by the feed.

A row holds the events of one write statement (see tables.outbox); an event's place is its
row's id and its rank in the row, from 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.bulk import row_payloads
from loadbay.storage.kinds import kind_of
from loadbay.storage.tables import outbox, relay_position


class FeedPosition(NamedTuple):
    """Just after the `rank`th event of row `row_id`; rank None: after the whole row."""

    row_id: int
    rank: int | None = None


class FeedEvent(NamedTuple):
    position: FeedPosition  # rank None when the event is the last of its row
    payload: str  # the event's JSON text


async def add_events(conn: AsyncConnection, events: Sequence[Mapping[str, Any]]) -> None:
    """Events written from Python (a few: deletions), a row each; the relay reads them like
    the others. Each has tenant_id, collection, record_key, event_id, event_type, payload
    (the event's value) and created_at."""
    if events:
        await conn.execute(insert(outbox), [_row_of_one(event) for event in events])


def _row_of_one(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tenant_id": event["tenant_id"],
        "collection": event["collection"],
        "event_type": event["event_type"],
        "event_count": 1,
        "record_keys": orjson.dumps([event["record_key"]]).decode(),
        "event_ids": orjson.dumps([event["event_id"]]).decode(),
        "payloads": orjson.dumps(event["payload"]).decode(),
        "created_at": event["created_at"],
    }


def _published_through() -> ColumnElement[int]:
    """The relay's position; 0 without its row (a table emptied by hand): all is pending."""
    return func.coalesce(select(relay_position.c.published_through).scalar_subquery(), 0)


async def prune_published(conn: AsyncConnection, created_before: datetime) -> int:
    """Delete the published events written before a time, and say how many; pending ones
    stay, however old."""
    pruned = await conn.execute(
        delete(outbox)
        .where(outbox.c.created_at < created_before, outbox.c.id <= _published_through())
        .returning(outbox.c.event_count)
    )
    return sum(count for (count,) in pruned)


async def feed(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    collection: str | None,
    after: FeedPosition,
    limit: int,
) -> list[FeedEvent]:
    """The tenant's events after a position, oldest first: only those no event still to
    commit precedes, so that a cursor never passes one (see feed_horizon)."""
    skipped = after.rank or 0
    first_row = after.row_id if after.rank is None else after.row_id - 1
    horizon = await kind_of(conn).committed_up_to(conn)
    # The rows to read: as many as hold the events wanted, their texts read only for those.
    before = func.sum(outbox.c.event_count).over(order_by=outbox.c.id) - outbox.c.event_count
    rows = select(
        outbox.c.id, outbox.c.event_count, outbox.c.payloads, before.label("before")
    ).where(outbox.c.tenant_id == tenant_id, outbox.c.id > first_row)
    if horizon is not None:
        rows = rows.where(outbox.c.id <= horizon)
    if collection is not None:
        rows = rows.where(outbox.c.collection == collection)
    # Every row read holds an event to return, but perhaps the cursor's own: one row more.
    read = rows.order_by(outbox.c.id).limit(limit + 1).subquery()
    query = select(read.c.id, read.c.event_count, read.c.payloads)
    query = query.where(read.c.before < limit + skipped)
    events: list[FeedEvent] = []
    for row_id, count, payloads in (await conn.execute(query.order_by(read.c.id))).all():
        texts = row_payloads(payloads, count)
        start = skipped if row_id == after.row_id else 0
        for rank in range(start + 1, len(texts) + 1):
            if len(events) == limit:
                return events
            last = rank == len(texts)
            events.append(FeedEvent(FeedPosition(row_id, None if last else rank), texts[rank - 1]))
    return events


async def lag(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many events wait to be published, and when the oldest of them was written; in one
    statement, so that the two agree."""
    # Of the first row pending, a batch acknowledged in part may have published the head.
    published = func.coalesce(select(relay_position.c.published_rank).scalar_subquery(), 0)
    query = select(
        func.coalesce(func.sum(outbox.c.event_count) - published, 0),
        func.min(outbox.c.created_at),
    )
    count, created_at = (await conn.execute(query.where(outbox.c.id > _published_through()))).one()
    return int(count), created_at
