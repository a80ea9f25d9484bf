"""Job rows and their per-record result rows."""

from __future__ import annotations

from collections.abc import Collection as Sized
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.outcomes import Job, JobStatus, Outcome, RecordResult
from loadbay.storage.database import WriteUnit
from loadbay.storage.rows import from_row
from loadbay.storage.tables import ORIGIN_INDEX, ORIGIN_JOB, job_results, jobs

_RESULT_COLUMNS = ("job_id", "idx", "status", "record_id", "error", "message", "payload")


async def create_job(
    unit: WriteUnit,
    *,
    tenant_id: str,
    kind: str,
    collection: str,
    record_count: int,
    now: datetime,
) -> Job:
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "kind": kind,
        "collection": collection,
        "status": JobStatus.PROCESSING.value,
        "record_count": record_count,
        "succeeded_count": 0,
        "failed_count": 0,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }
    job_id = await unit.bulk.insert_row(jobs, values)
    return _job({"id": job_id, **values})


async def save_job_counts(unit: WriteUnit, job: Job) -> None:
    await unit.bulk.update_row(
        jobs,
        job.id,
        {
            "status": job.status.value,
            "succeeded_count": job.succeeded_count,
            "failed_count": job.failed_count,
            "updated_at": job.updated_at,
            "completed_at": job.completed_at,
        },
    )


async def add_counts(
    conn: AsyncConnection, job_id: int, succeeded: int, failed: int, now: datetime
) -> None:
    """Count more records into a job that grows as it runs (a file job, chunk by chunk)."""
    parameters = {"job_id": job_id, "succeeded": succeeded, "failed": failed, "now": now}
    await conn.execute(_ADD_COUNTS, parameters)


# Built once, not per chunk of a file (see storage.instances._allocation).
_ADD_COUNTS = (
    update(jobs)
    .where(jobs.c.id == bindparam("job_id"))
    .values(
        succeeded_count=jobs.c.succeeded_count + bindparam("succeeded"),
        failed_count=jobs.c.failed_count + bindparam("failed"),
        record_count=jobs.c.record_count + bindparam("succeeded") + bindparam("failed"),
        updated_at=bindparam("now"),
    )
)


async def finish_job(conn: AsyncConnection, job_id: int, status: JobStatus, now: datetime) -> None:
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(status=status.value, updated_at=now, completed_at=now)
    )


async def add_results(unit: WriteUnit, job_id: int, results: Sequence[RecordResult]) -> None:
    if not results:
        return
    rows = [
        {
            "job_id": job_id,
            "idx": r.index,
            "status": r.outcome.value,
            "record_id": r.record_id,
            "error": r.error,
            "message": r.message,
            "payload": r.payload if r.outcome is Outcome.FAILED else None,
        }
        for r in results
    ]
    await unit.bulk.insert(job_results, _RESULT_COLUMNS, rows)


async def replace_results(
    unit: WriteUnit, job_id: int, results: Sequence[RecordResult], *, keep: Sequence[RecordResult]
) -> None:
    """Drop the stored results of `results`' records, then store those in `keep`."""
    await unit.conn.execute(
        delete(job_results).where(
            job_results.c.job_id == job_id, job_results.c.idx.in_([r.index for r in results])
        )
    )
    await add_results(unit, job_id, keep)


async def find_job(
    conn: AsyncConnection, tenant_id: str, kind: str, job_id: int, *, for_update: bool = False
) -> Job | None:
    query = select(jobs).where(
        jobs.c.id == job_id, jobs.c.tenant_id == tenant_id, jobs.c.kind == kind
    )
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else _job(row)


async def find_results(
    conn: AsyncConnection, job_id: int, indices: Sized[int] | None = None
) -> list[RecordResult]:
    query = select(job_results).where(job_results.c.job_id == job_id).order_by(job_results.c.idx)
    if indices is not None:
        query = query.where(job_results.c.idx.in_(list(indices)))
    rows = (await conn.execute(query)).mappings()
    return [
        RecordResult(
            index=r["idx"],
            outcome=Outcome(r["status"]),
            record_id=r["record_id"],
            error=r["error"],
            message=r["message"],
            payload=r["payload"],
        )
        for r in rows
    ]


async def find_created(
    conn: AsyncConnection, table: Table, job_id: int, indices: Sized[int] | None = None
) -> list[tuple[int, int]]:
    """(index, row id) of the rows that the job's records created, from their origin columns."""
    query = select(table.c[ORIGIN_INDEX], table.c.id).where(table.c[ORIGIN_JOB] == job_id)
    if indices is not None:
        query = query.where(table.c[ORIGIN_INDEX].in_(list(indices)))
    return [(index, row_id) for index, row_id in (await conn.execute(query)).all()]


async def list_jobs(
    conn: AsyncConnection,
    tenant_id: str,
    kind: str,
    *,
    status: JobStatus | None,
    offset: int,
    limit: int,
) -> tuple[list[Job], int]:
    where = [jobs.c.tenant_id == tenant_id, jobs.c.kind == kind]
    if status is not None:
        where.append(jobs.c.status == status.value)
    total = (await conn.execute(select(func.count()).select_from(jobs).where(*where))).scalar_one()
    page = await conn.execute(
        select(jobs).where(*where).order_by(jobs.c.id.desc()).offset(offset).limit(limit)
    )
    return [_job(row) for row in page.mappings()], total


async def delete_job(conn: AsyncConnection, tenant_id: str, kind: str, job_id: int) -> bool:
    # Results go first: SQLite only cascades with its foreign_keys pragma on.
    owned = select(jobs.c.id).where(
        jobs.c.id == job_id, jobs.c.tenant_id == tenant_id, jobs.c.kind == kind
    )
    await conn.execute(delete(job_results).where(job_results.c.job_id.in_(owned)))
    deleted = await conn.execute(delete(jobs).where(jobs.c.id.in_(owned)))
    return deleted.rowcount > 0


def _job(row: Any) -> Job:
    return from_row(Job, row, status=JobStatus(row["status"]))
