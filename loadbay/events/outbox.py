"""Domain event values written from Python: deletions (changes are captured by the database)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True)
class EventContext:
    """Emit events for a write; `job_ref` is the public id of the job it belongs to."""

    job_ref: str | None = None


def outbox_row(
    *,
    collection: str,
    tenant_id: str,
    key: str,
    event_type: EventType,
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    context: EventContext,
    now: datetime,
) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    value: dict[str, Any] = {
        "eventId": event_id,
        "eventTs": int(now.timestamp() * 1000),
        "type": event_type.value,
        "tenant": tenant_id,
        "collection": collection,
        "key": key,
        "jobId": context.job_ref,
    }
    if old is not None:
        value["old"] = old
    if new is not None:
        value["new"] = new
    return {
        "tenant_id": tenant_id,
        "collection": collection,
        "record_key": key,
        "event_id": event_id,
        "event_type": event_type.value,
        "payload": value,
        "created_at": now,
        "published_at": None,
    }
