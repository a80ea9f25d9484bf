"""What the dashboard reads: a tenant's jobs of every kind, their failures, what went in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.tables import file_jobs, job_results, jobs


def _jobs_with_files() -> Select[Any]:
    """Jobs of every kind; a file job with its file and progress (None for the others)."""
    return select(
        jobs,
        file_jobs.c.records_file,
        file_jobs.c.lines_done,
        file_jobs.c.lines_total,
        file_jobs.c.errors_count,
    ).select_from(jobs.outerjoin(file_jobs, file_jobs.c.job_id == jobs.c.id))


async def recent_jobs(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    kinds: Sequence[str],
    status: str | None,
    limit: int,
) -> list[Mapping[str, Any]]:
    """The tenant's newest jobs of these kinds, file jobs with their progress."""
    query = (
        _jobs_with_files()
        .where(jobs.c.tenant_id == tenant_id, jobs.c.kind.in_(list(kinds)))
        .order_by(jobs.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(jobs.c.status == status)
    return list((await conn.execute(query)).mappings())


async def one_job(conn: AsyncConnection, tenant_id: str, job_id: int) -> Mapping[str, Any] | None:
    query = _jobs_with_files().where(jobs.c.tenant_id == tenant_id, jobs.c.id == job_id)
    return (await conn.execute(query)).mappings().first()


async def failed_results(conn: AsyncConnection, job_id: int, limit: int) -> list[Mapping[str, Any]]:
    """A job's failed records (batch jobs keep them), in batch order."""
    query = (
        select(job_results.c.idx, job_results.c.error, job_results.c.message)
        .where(job_results.c.job_id == job_id, job_results.c.status == "failed")
        .order_by(job_results.c.idx)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


async def ingested_by_day(
    conn: AsyncConnection, tenant_id: str, since: datetime
) -> list[tuple[str, str, int]]:
    """(day as YYYY-MM-DD, collection, records that went in) for the tenant's jobs since."""
    # The timestamp's text starts with the day on both databases (UTC sessions).
    day = func.substr(cast(jobs.c.created_at, String), 1, 10)
    query = (
        select(day.label("day"), jobs.c.collection, func.sum(jobs.c.succeeded_count))
        .where(jobs.c.tenant_id == tenant_id, jobs.c.created_at >= since)
        .group_by(day, jobs.c.collection)
        .order_by(day)
    )
    return [(str(d), str(c), int(n or 0)) for d, c, n in await conn.execute(query)]
