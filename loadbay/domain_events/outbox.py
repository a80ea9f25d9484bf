"""Domain event values written from Python: deletions (changes are captured by the database)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class EventContext:
    """Emit events for a write; `job_ref` is the public id of the job it belongs to."""

    job_ref: str | None = None


def deletion_row(
    *, collection: str, tenant_id: str, key: str, old: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The outbox row of a DELETE event (CREATE and UPDATE are the capture triggers')."""
    event_id = str(uuid.uuid4())
    value = {
        "eventId": event_id,
        "eventTs": int(now.timestamp() * 1000),
        "type": "DELETE",
        "tenant": tenant_id,
        "collection": collection,
        "key": key,
        "jobId": None,
        "old": old,
    }
    return {
        "tenant_id": tenant_id,
        "collection": collection,
        "record_key": key,
        "event_id": event_id,
        "event_type": "DELETE",
        "payload": value,
        "created_at": now,
    }
