"""Reading the stored records of a collection, by public id or a page at a time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadbay.ingest.collection import Collection
from loadbay.ingest.ids import not_found, number_or_not_found
from loadbay.storage import records as record_store
from loadbay.storage.database import Database


@dataclass(frozen=True)
class RecordPage:
    records: list[Mapping[str, Any]]
    total: int


class Records:
    def __init__(self, db: Database, collection: Collection) -> None:
        self._db = db
        self.collection = collection

    async def get(self, tenant_id: str, public_id: str) -> Mapping[str, Any]:
        what = f"{self.collection.name} record"
        number = number_or_not_found(self.collection.ids, public_id, what)
        async with self._db.read() as conn:
            record = await record_store.find_record(
                conn, self.collection.target.table, tenant_id, number
            )
        if record is None:
            raise not_found(what, public_id)
        return record

    async def list(
        self, tenant_id: str, *, filters: Mapping[str, Any], offset: int, limit: int
    ) -> RecordPage:
        async with self._db.read() as conn:
            found, total = await record_store.list_records(
                conn,
                self.collection.target.table,
                tenant_id,
                filters=filters,
                offset=offset,
                limit=limit,
            )
        return RecordPage(records=found, total=total)
