"""Builders of request bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

BATCHES = "/api/v1/batch-inserts"
ACTIVITIES = "/api/v1/activities"


def activity(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid activity; `n` makes its key (mentor, type, date) distinct."""
    record: dict[str, Any] = {
        "coordinator_id": "coord-42",
        "mentor_id": f"mentor-{n}",
        "activity_type": "group_workshop",
        "activity_date": "2026-03-28",
        "duration_minutes": 120,
    }
    record.update(overrides)
    return record


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"activities": list(records)}


def outbox_event(key: str) -> dict[str, Any]:
    """An event as Python writes one to the outbox (a deletion's, say), its payload naming
    `key`."""
    return {
        "tenant_id": "default",
        "collection": "activities",
        "record_key": key,
        "event_id": str(uuid.uuid4()),
        "event_type": "CREATE",
        "payload": {"key": key},
        "created_at": datetime.now(UTC),
    }
