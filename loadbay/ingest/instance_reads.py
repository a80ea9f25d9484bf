"""Reading stored instances as clients see them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.errors import NotFound
from loadbay.ingest.instance_titles import with_titles
from loadbay.ingest.instances import instance_document
from loadbay.storage import records as record_store
from loadbay.storage.database import Database
from loadbay.storage.instances import find_instance, title_links
from loadbay.storage.tables import instances


class InstanceReads:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant_id: str, instance_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await find_instance(conn, tenant_id, instance_id.lower())
            if row is None:
                raise NotFound(f"instance {instance_id} not found")
            return (await _with_titles(conn, tenant_id, [row]))[0]

    async def page(
        self, tenant_id: str, *, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        async with self._db.read() as conn:
            rows, total = await record_store.list_records(
                conn, instances, tenant_id, filters={}, offset=offset, limit=limit
            )
            return await _with_titles(conn, tenant_id, rows), total


async def _with_titles(
    conn: AsyncConnection, tenant_id: str, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each instance's document with the title links touching it, read in one query."""
    links = await title_links(conn, tenant_id, [row["instance_id"] for row in rows])
    return [with_titles(instance_document(row), row["instance_id"], links) for row in rows]
