"""A file job's list of committed chunks: each chunk is listed once, whoever commits it."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from loadbay.auth.tenants import DEFAULT_TENANT_ID
from loadbay.files.jobs import FileJobs
from loadbay.storage import file_jobs as store
from loadbay.storage.types import utcnow
from tests.api.instances.helpers import instance, upload


class _Lost(Exception):
    pass


async def advance(app: FastAPI, job_id: int, node: str, chunk: int) -> bool:
    """As a chunk's transaction does: rolled back whole when the job is not this node's."""
    try:
        async with app.state.db.write() as unit:
            if not await store.advance(
                unit.conn, job_id, node, chunk=chunk, lines=2, errors=0, now=utcnow()
            ):
                raise _Lost
    except _Lost:
        return False
    return True


async def test_a_second_run_committing_a_listed_chunk_loses_its_claim(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    """Two runs of one job under the same node (its own worker took over a job whose heartbeat
    went quiet): the second to commit a chunk is told it lost the job, and nothing moves."""
    await upload(client, "a.ndjson", instance(1), instance(2))
    jobs: FileJobs = started.state.file_jobs
    job_id = await jobs.create(DEFAULT_TENANT_ID, "a.ndjson", False, run_here=True)

    first = await advance(started, job_id, jobs.node, chunk=0)
    again = await advance(started, job_id, jobs.node, chunk=0)
    elsewhere = await advance(started, job_id, "another-node:1", chunk=1)
    next_chunk = await advance(started, job_id, jobs.node, chunk=1)

    assert (first, again, elsewhere, next_chunk) == (True, False, False, True)
    assert (await jobs.view(job_id))["lines_done"] == 4
    async with started.state.db.read() as conn:
        assert await store.committed_chunks(conn, job_id) == {0, 1}
