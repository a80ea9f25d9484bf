"""Reading a tenant's own events without a broker, and how far the relay lags behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from loadbay.errors import UnprocessableInput
from loadbay.storage import outbox as store
from loadbay.storage.database import Database
from loadbay.storage.types import utcnow


@dataclass(frozen=True)
class FeedPage:
    events: list[Any]
    cursor: str | None


@dataclass(frozen=True)
class Lag:
    pending: int
    oldest_age_seconds: float


class EventFeed:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self, tenant_id: str, *, collection: str | None, after: str | None, limit: int
    ) -> FeedPage:
        """Events after the cursor, oldest first; the cursor of the last one comes back."""
        position = _position(after)
        async with self._db.read() as conn:
            events = await store.feed(
                conn, tenant_id, collection=collection, after=position, limit=limit
            )
        cursor = _cursor(events[-1].position) if events else after
        return FeedPage(events=[orjson.Fragment(e.payload) for e in events], cursor=cursor)

    async def lag(self) -> Lag:
        async with self._db.read() as conn:
            pending, oldest = await store.lag(conn)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        return Lag(pending=pending, oldest_age_seconds=max(age, 0.0))


def _cursor(position: store.FeedPosition) -> str:
    """`row` after a whole outbox row (as every cursor was before rows held several events),
    `row.rank` after the rank-th event of one."""
    row_id, rank = position
    return str(row_id) if rank is None else f"{row_id}.{rank}"


def _position(cursor: str | None) -> store.FeedPosition:
    if cursor is None:
        return store.FeedPosition(0)
    row, dot, rank = cursor.partition(".")
    if not _is_number(row) or (dot and not _is_number(rank)):
        raise UnprocessableInput(
            "after must be a cursor returned by this feed", code="invalid_parameter"
        )
    return store.FeedPosition(int(row), int(rank) if dot else None)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18
