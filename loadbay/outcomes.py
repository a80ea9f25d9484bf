"""What happened to each record and to each job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    # Already stored and left as it was (an idempotent insert seen before).
    UNCHANGED = "unchanged"
    FAILED = "failed"


class JobStatus(StrEnum):
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class RecordError(StrEnum):
    """Why a record failed, one name per meaning; each API maps these to its contract's
    spelling (api/_batch_views.py, api/operator_envelope.py, and
    files/error_parts.py for the instance error files)."""

    INVALID = "invalid"
    # A records file's line that is not JSON.
    INVALID_JSON = "invalid_json"
    # A unique key that another stored record holds (or, where writes keep the first, this
    # record's own key already stored).
    DUPLICATE = "duplicate"
    # The stored record could not be updated: it changed since it was read (`_version`).
    VERSION_CONFLICT = "version_conflict"
    # The stored record with this key is of another type.
    TYPE_CONFLICT = "type_conflict"
    # A stored record could not be written over for another reason the database gave.
    CONFLICT = "conflict"
    # A record this one refers to does not exist.
    REFERENCE_NOT_FOUND = "reference_not_found"
    # What a template does not declare.
    UNKNOWN_ENTITY_TYPE = "unknown_entity_type"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    UNKNOWN_STATE_KEY = "unknown_state_key"


@dataclass(slots=True)
class RecordResult:
    index: int
    outcome: Outcome
    record_id: str | None = None
    error: str | None = None
    message: str | None = None
    # The submitted record; kept only for failed records, which can be retried.
    payload: Any = None

    @property
    def succeeded(self) -> bool:
        return self.outcome is not Outcome.FAILED


@dataclass(slots=True)
class Job:
    id: int
    tenant_id: str
    kind: str
    collection: str
    status: JobStatus
    record_count: int
    succeeded_count: int
    failed_count: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    results: list[RecordResult] = field(default_factory=list)


def file_progress(status: str, lines_done: int, lines_total: int | None) -> int:
    """A file job's progress in percent: 100 once finished, 0 while its lines are counted."""
    if status != JobStatus.PROCESSING.value:
        return 100
    return lines_done * 100 // lines_total if lines_total else 0
