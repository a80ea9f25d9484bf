"""A collection: one kind of record, described once and written by the generic engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadbay.ingest.ids import PublicIds
from loadbay.storage.bulk import BulkTarget


@dataclass(frozen=True)
class Collection:
    name: str
    target: BulkTarget
    # The natural key inside a tenant; the engine dedupes, sorts and conflicts on it.
    key: tuple[str, ...]
    # Returns the record's column values or raises RecordInvalid.
    validate: Callable[[Any], dict[str, Any]]
    ids: PublicIds
    # Said when a record's key is already taken and the write may not update it.
    conflict_message: str
