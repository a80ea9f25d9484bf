"""Engine results in the batch-insert API's shapes."""

from __future__ import annotations

from typing import Any

from loadbay.api.responses import timestamp
from loadbay.ingest.ids import PublicIds
from loadbay.outcomes import Job, RecordError, RecordResult

# This contract's spelling of record errors; the others are their names.
_RECORD_ERRORS: dict[str, str] = {
    RecordError.INVALID: "validation_error",
    RecordError.DUPLICATE: "unique_constraint_violation",
}


def record_error_code(error: str) -> str:
    """A record's error (RecordError) as the batch-insert contract spells it."""
    return _RECORD_ERRORS.get(error, error)


def record_result(result: RecordResult) -> dict[str, Any]:
    view: dict[str, Any] = {
        "index": result.index,
        "activity_id": result.record_id,
        "status": "success" if result.succeeded else "failed",
    }
    if not result.succeeded:
        view["error"] = record_error_code(result.error or "")
        view["message"] = result.message
    return view


def batch_counts(job: Job, ids: PublicIds) -> dict[str, Any]:
    return {
        "id": ids.format(job.id),
        "record_count": job.record_count,
        "status": job.status.value,
        "inserted_count": job.succeeded_count,
        "failed_count": job.failed_count,
    }


def batch_created(job: Job, ids: PublicIds) -> dict[str, Any]:
    return {**batch_counts(job, ids), "results": [record_result(r) for r in job.results]}


def batch_summary(job: Job, ids: PublicIds) -> dict[str, Any]:
    return {**batch_counts(job, ids), "created_at": timestamp(job.created_at)}


def batch_detail(job: Job, ids: PublicIds) -> dict[str, Any]:
    return {
        **batch_created(job, ids),
        "created_at": timestamp(job.created_at),
        "completed_at": timestamp(job.completed_at),
    }


def retried(job: Job, ids: PublicIds, results: list[RecordResult]) -> dict[str, Any]:
    return {
        "id": ids.format(job.id),
        "status": job.status.value,
        "inserted_count": job.succeeded_count,
        "failed_count": job.failed_count,
        "updated_at": timestamp(job.updated_at),
        "results": [record_result(r) for r in results],
    }
