"""The lifecycle every job goes through, whatever its kind: opened, counted, finished;
found, listed and deleted by its tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.errors import NotFound
from loadbay.ingest.ids import IdCodec
from loadbay.outcomes import Job, JobStatus
from loadbay.storage import jobs as job_store
from loadbay.storage.database import WriteUnit
from loadbay.storage.types import utcnow


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    total: int


def final_status(succeeded_count: int, record_count: int) -> JobStatus:
    """A finished job is `failed` only when not one of its records went in."""
    if record_count and succeeded_count == 0:
        return JobStatus.FAILED
    return JobStatus.COMPLETED


class JobLifecycle:
    """The jobs of one kind in the jobs table.

    A batch is counted and finished in the transaction that opens it (`finish`); a file job
    grows chunk by chunk (`count`, its cursor kept by files) and is finished at its end
    (`finish_counted`) or failed (`fail`). A retry recounts a finished batch (`recount`).
    """

    def __init__(self, kind: str, ids: IdCodec, noun: str) -> None:
        self.kind = kind
        self.ids = ids
        # What a caller calls these jobs ("batch", "job"), for its not-found answers.
        self._noun = noun

    async def open(
        self,
        unit: WriteUnit,
        tenant_id: str,
        collection: str,
        record_count: int = 0,
        *,
        now: datetime | None = None,
    ) -> Job:
        """A new job; `now`, when given, is the time its records are stamped with."""
        return await job_store.create_job(
            unit,
            tenant_id=tenant_id,
            kind=self.kind,
            collection=collection,
            record_count=record_count,
            now=now or utcnow(),
        )

    async def finish(self, unit: WriteUnit, job: Job, *, failed: int) -> None:
        """A whole batch written: its counts and final status."""
        job.failed_count = failed
        job.succeeded_count = job.record_count - failed
        job.status = final_status(job.succeeded_count, job.record_count)
        job.completed_at = job.updated_at = utcnow()
        await job_store.save_job_counts(unit, job)

    async def recount(self, unit: WriteUnit, job: Job, *, recovered: int) -> None:
        """Failed records of a finished batch written after all, by a retry."""
        job.succeeded_count += recovered
        job.failed_count -= recovered
        job.status = final_status(job.succeeded_count, job.record_count)
        job.updated_at = utcnow()
        await job_store.save_job_counts(unit, job)

    async def count(
        self, conn: AsyncConnection, job_id: int, *, succeeded: int, failed: int
    ) -> None:
        """More records of a growing job written (a file job's chunk)."""
        await job_store.add_counts(conn, job_id, succeeded, failed, utcnow())

    async def finish_counted(self, conn: AsyncConnection, tenant_id: str, job_id: int) -> None:
        """A growing job at its end: its final status from what it counted."""
        job = await job_store.find_job(conn, tenant_id, self.kind, job_id)
        status = final_status(job.succeeded_count, job.record_count) if job else JobStatus.COMPLETED
        await job_store.finish_job(conn, job_id, status, utcnow())

    async def fail(self, conn: AsyncConnection, job_id: int) -> None:
        """A job that cannot go on (its file unreadable, say)."""
        await job_store.finish_job(conn, job_id, JobStatus.FAILED, utcnow())

    async def find(
        self, conn: AsyncConnection, tenant_id: str, job_id: int, *, for_update: bool = False
    ) -> Job:
        job = await job_store.find_job(conn, tenant_id, self.kind, job_id, for_update=for_update)
        if job is None:
            raise self.not_found(job_id)
        return job

    async def list(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        *,
        status: JobStatus | None,
        page: int,
        limit: int,
    ) -> JobPage:
        found, total = await job_store.list_jobs(
            conn, tenant_id, self.kind, status=status, offset=(page - 1) * limit, limit=limit
        )
        return JobPage(jobs=found, total=total)

    async def delete(self, conn: AsyncConnection, tenant_id: str, job_id: int) -> None:
        if not await job_store.delete_job(conn, tenant_id, self.kind, job_id):
            raise self.not_found(job_id)

    def not_found(self, job_id: int) -> NotFound:
        return NotFound(f"{self._noun} {self.ids.format(job_id)} not found")
