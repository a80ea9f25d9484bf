"""Reading stored instances as clients see them."""

from __future__ import annotations

from typing import Any

from loadbay.errors import NotFound
from loadbay.ingest.instances import instance_document
from loadbay.storage import records as record_store
from loadbay.storage.database import Database
from loadbay.storage.instances import find_instance
from loadbay.storage.tables import instances


class InstanceReads:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant_id: str, instance_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await find_instance(conn, tenant_id, instance_id.lower())
        if row is None:
            raise NotFound(f"instance {instance_id} not found")
        return instance_document(row)

    async def page(
        self, tenant_id: str, *, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        async with self._db.read() as conn:
            rows, total = await record_store.list_records(
                conn, instances, tenant_id, filters={}, offset=offset, limit=limit
            )
        return [instance_document(row) for row in rows], total
