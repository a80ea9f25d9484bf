"""Reading a tenant's own events without a broker, and how far the relay lags behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
            rows = await store.feed(
                conn, tenant_id, collection=collection, after=position, limit=limit
            )
        cursor = str(rows[-1]["id"]) if rows else after
        return FeedPage(events=[row["payload"] for row in rows], cursor=cursor)

    async def lag(self) -> Lag:
        async with self._db.read() as conn:
            pending, oldest = await store.lag(conn)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        return Lag(pending=pending, oldest_age_seconds=max(age, 0.0))


def _position(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise UnprocessableInput(
            "after must be a cursor returned by this feed", code="invalid_parameter"
        )
    return int(cursor)
