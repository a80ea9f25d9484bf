"""Reading the stored records of a collection, by public id or a page at a time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loadbay.ingest.collection import Collection
from loadbay.ingest.ids import not_found, number_or_not_found
from loadbay.storage import records as record_store
from loadbay.storage.database import Database
from loadbay.storage.rows import from_row

T = TypeVar("T")


@dataclass(frozen=True)
class RecordPage(Generic[T]):
    records: list[T]
    total: int


class Records(Generic[T]):
    """The stored records of one collection, each as a `record_type` (a dataclass whose
    fields are columns of the collection's table)."""

    def __init__(self, db: Database, collection: Collection, record_type: type[T]) -> None:
        self._db = db
        self.collection = collection
        self._record_type = record_type

    async def get(self, tenant_id: str, public_id: str) -> T:
        what = f"{self.collection.name} record"
        number = number_or_not_found(self.collection.ids, public_id, what)
        async with self._db.read() as conn:
            record = await record_store.find_record(
                conn, self.collection.target.table, tenant_id, number
            )
        if record is None:
            raise not_found(what, public_id)
        return from_row(self._record_type, record)

    async def list(
        self, tenant_id: str, *, filters: Mapping[str, Any], offset: int, limit: int
    ) -> RecordPage[T]:
        async with self._db.read() as conn:
            found, total = await record_store.list_records(
                conn,
                self.collection.target.table,
                tenant_id,
                filters=filters,
                offset=offset,
                limit=limit,
            )
        return RecordPage([from_row(self._record_type, row) for row in found], total)
