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


UNIQUE_VIOLATION = "unique_constraint_violation"
VALIDATION_ERROR = "validation_error"


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


def final_status(succeeded_count: int, record_count: int) -> JobStatus:
    """A finished job is `failed` only when not one of its records went in."""
    if record_count and succeeded_count == 0:
        return JobStatus.FAILED
    return JobStatus.COMPLETED
