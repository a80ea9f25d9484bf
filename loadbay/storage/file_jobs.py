"""File-job rows: committed chunks, claims and heartbeats of resumable file jobs."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.kinds import DatabaseKind, kind_of
from loadbay.storage.tables import file_job_chunks, file_jobs, jobs


async def add_file_job(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(insert(file_jobs).values(**values))


async def find_file_job(
    conn: AsyncConnection, job_id: int, tenant_id: str | None = None
) -> Mapping[str, Any] | None:
    query = select(jobs, file_jobs).join(file_jobs, file_jobs.c.job_id == jobs.c.id)
    query = query.where(jobs.c.id == job_id)
    if tenant_id is not None:
        query = query.where(jobs.c.tenant_id == tenant_id)
    return (await conn.execute(query)).mappings().first()


async def claim_abandoned(
    conn: AsyncConnection, node: str, stale_before: datetime, now: datetime
) -> int | None:
    """Take the oldest unfinished job nobody is running (queued, or its runner went quiet)."""
    query = (
        select(file_jobs.c.job_id)
        .join(jobs, jobs.c.id == file_jobs.c.job_id)
        .where(
            jobs.c.status == "processing",
            or_(file_jobs.c.claimed_by.is_(None), file_jobs.c.heartbeat_at < stale_before),
        )
        .order_by(file_jobs.c.job_id)
        .limit(1)
        .with_for_update(skip_locked=True, of=file_jobs)
    )
    job_id = (await conn.execute(query)).scalar()
    if job_id is None:
        return None
    await conn.execute(
        update(file_jobs)
        .where(file_jobs.c.job_id == job_id)
        .values(claimed_by=node, heartbeat_at=now)
    )
    return int(job_id)


async def release(conn: AsyncConnection, job_id: int, node: str) -> None:
    """Give a claimed job up; any worker may claim it next."""
    await conn.execute(
        update(file_jobs)
        .where(file_jobs.c.job_id == job_id, file_jobs.c.claimed_by == node)
        .values(claimed_by=None, heartbeat_at=None)
    )


async def advance(
    conn: AsyncConnection,
    job_id: int,
    node: str,
    *,
    chunk: int,
    lines: int,
    errors: int,
    now: datetime,
) -> bool:
    """Record a chunk as committed; False if this node no longer holds the job, or if the chunk
    was committed already (another run of the job got there first): nothing moves then.

    In the chunk's own transaction, which the caller rolls back on False.
    """
    listed = await conn.execute(_list_chunk(kind_of(conn)), {"job_id": job_id, "chunk": chunk})
    if listed.rowcount != 1:
        return False
    parameters = {"b_job_id": job_id, "node": node, "lines": lines, "errors": errors, "now": now}
    moved = await conn.execute(_ADVANCE, parameters)
    return moved.rowcount == 1


# Built once, not per chunk (see storage.instances._allocation).
@functools.cache
def _list_chunk(kind: DatabaseKind) -> Any:
    return kind.upsert_insert(file_job_chunks).on_conflict_do_nothing()


_ADVANCE = (
    update(file_jobs)
    .where(file_jobs.c.job_id == bindparam("b_job_id"), file_jobs.c.claimed_by == bindparam("node"))
    .values(
        lines_done=file_jobs.c.lines_done + bindparam("lines"),
        errors_count=file_jobs.c.errors_count + bindparam("errors"),
        heartbeat_at=bindparam("now"),
    )
)


async def committed_chunks(conn: AsyncConnection, job_id: int) -> set[int]:
    query = select(file_job_chunks.c.chunk).where(file_job_chunks.c.job_id == job_id)
    return set((await conn.execute(query)).scalars())


async def set_total(conn: AsyncConnection, job_id: int, total: int, now: datetime) -> None:
    await conn.execute(
        update(file_jobs)
        .where(file_jobs.c.job_id == job_id)
        .values(lines_total=total, heartbeat_at=now)
    )


async def close(conn: AsyncConnection, job_id: int, error: str | None = None) -> None:
    """The file side of a finished job (its `jobs` row is finished by storage.jobs)."""
    await conn.execute(
        update(file_jobs).where(file_jobs.c.job_id == job_id).values(claimed_by=None, error=error)
    )
    # A finished job is never resumed: its list of chunks has served.
    await conn.execute(delete(file_job_chunks).where(file_job_chunks.c.job_id == job_id))


async def count_by_status(conn: AsyncConnection) -> dict[str, int]:
    query = (
        select(jobs.c.status, func.count())
        .select_from(jobs.join(file_jobs, file_jobs.c.job_id == jobs.c.id))
        .group_by(jobs.c.status)
    )
    return {status: int(count) for status, count in await conn.execute(query)}
