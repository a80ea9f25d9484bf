"""A file job's list of committed chunks: each chunk is listed once, whoever commits it, and a
resumed job writes the others; a chunk rolled back by a lost race is written again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asyncpg.exceptions import DeadlockDetectedError
from fastapi import FastAPI

from loadbay.auth.tenants import DEFAULT_TENANT_ID
from loadbay.files.jobs import FileJobs
from loadbay.storage import file_jobs as store
from loadbay.storage.bulk import StoredKeysMet
from loadbay.storage.types import utcnow
from tests.api.instances.helpers import INSTANCES, bulk, iid, instance, stored, upload


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
    assert (await jobs.view(job_id)).lines_done == 4
    async with started.state.db.read() as conn:
        assert await store.committed_chunks(conn, job_id) == {0, 1}


@pytest.mark.parametrize("settings_overrides", [{"file_chunk_lines": 2}])
async def test_a_resumed_job_skips_exactly_the_chunks_listed_even_past_a_gap(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    """Chunk 1 of 0-2 committed ahead of chunk 0 before the job stopped: the next run writes
    chunks 0 and 2 only."""
    await upload(client, "gap.ndjson", *(instance(n) for n in range(1, 6)))
    jobs: FileJobs = started.state.file_jobs
    job_id = await jobs.create(DEFAULT_TENANT_ID, "gap.ndjson", False, run_here=True)
    assert await advance(started, job_id, jobs.node, chunk=1)

    await jobs.run(job_id)

    job = await jobs.view(job_id)
    found = [(await client.get(f"{INSTANCES}/{iid(n)}")).status_code for n in range(1, 6)]
    assert found == [200, 200, 404, 404, 200]
    assert (job.status, job.lines_done, job.succeeded_count) == ("completed", 5, 3)


async def test_a_chunk_the_database_rolled_back_to_break_a_deadlock_is_written_once_more(
    client: httpx.AsyncClient, started: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs: FileJobs = started.state.file_jobs
    write_chunk = jobs._write_chunk
    attempts: list[int] = []

    async def deadlocked_once(*args: Any, **options: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise DeadlockDetectedError("deadlock detected")
        await write_chunk(*args, **options)

    monkeypatch.setattr(jobs, "_write_chunk", deadlocked_once)
    await upload(client, "a.ndjson", instance(1), instance(2))

    response = await bulk(client, "a.ndjson")

    assert response.json()["errorsNumber"] == 0
    assert len(attempts) == 2
    assert (await stored(client, 2))["_version"] == 1
    listed = (await client.get("/instance-storage/instances")).json()
    assert listed["totalRecords"] == 2


async def test_a_chunk_that_guessed_wrong_may_still_lose_a_race_once(
    client: httpx.AsyncClient, started: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-load's first chunks guess wrong and are written again all at once, which is when
    they may deadlock: the wrong guess does not use up the retry a lost race gets."""
    jobs: FileJobs = started.state.file_jobs
    write_chunk = jobs._write_chunk
    guesses: list[bool] = []

    async def wrong_then_deadlocked(*args: Any, guess_new: bool) -> None:
        guesses.append(guess_new)
        if len(guesses) == 1:
            raise StoredKeysMet("duplicate key")
        if len(guesses) == 2:
            raise DeadlockDetectedError("deadlock detected")
        await write_chunk(*args, guess_new=guess_new)

    monkeypatch.setattr(jobs, "_write_chunk", wrong_then_deadlocked)
    await upload(client, "a.ndjson", instance(1), instance(2))

    response = await bulk(client, "a.ndjson")

    assert response.json()["errorsNumber"] == 0
    assert guesses == [True, False, False]
    assert [(await stored(client, n))["_version"] for n in (1, 2)] == [1, 1]
