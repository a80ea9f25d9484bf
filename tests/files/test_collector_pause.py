"""A file job runs with the collector's automatic passes off, and turns them back on when it
ends, whether its chunks committed or one failed."""

from __future__ import annotations

import gc
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loadbay.auth.tenants import DEFAULT_TENANT_ID
from loadbay.files.jobs import FileJobs
from tests.api.instances.helpers import bulk, instance, upload


async def test_the_collector_is_off_while_chunks_are_written_and_on_after(
    client: httpx.AsyncClient, started: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs: FileJobs = started.state.file_jobs
    write_chunk = jobs._write_chunk
    during: list[bool] = []

    async def watched(*args: Any, **options: Any) -> None:
        during.append(gc.isenabled())
        await write_chunk(*args, **options)

    monkeypatch.setattr(jobs, "_write_chunk", watched)
    await upload(client, "a.ndjson", instance(1), instance(2))

    response = await bulk(client, "a.ndjson")

    assert response.json()["errorsNumber"] == 0
    assert set(during) == {False}  # every chunk written with the collector off
    assert gc.isenabled()


async def test_a_failed_job_turns_the_collector_back_on(
    client: httpx.AsyncClient, started: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs: FileJobs = started.state.file_jobs

    async def broken(*args: Any, **options: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(jobs, "_write_chunk", broken)
    await upload(client, "a.ndjson", instance(1))
    job_id = await jobs.create(DEFAULT_TENANT_ID, "a.ndjson", False, run_here=True)

    with pytest.raises(OSError, match="disk gone"):
        await jobs.run(job_id)

    assert gc.isenabled()


@pytest.mark.parametrize(
    "settings_overrides", [{"file_chunk_lines": 20, "instance_optimistic_locking": "off"}]
)
async def test_a_file_job_leaves_no_cyclic_garbage(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    """What lets a job pause the collector: refcounting alone frees all it made. A first load
    and a re-load (whose first chunks guess wrong and are written again), with lines that
    are not JSON and records that fail. Before a003d0a each chunk left ~500 cyclic objects."""
    lines: list[Any] = [instance(n) for n in range(200)]
    lines[7] = b"{not json"
    lines[33] = {"title": "no source, no type"}
    await upload(client, "a.ndjson", *lines)
    jobs: FileJobs = started.state.file_jobs
    unreachable = []
    for _ in ("first load", "re-load"):
        job_id = await jobs.create(DEFAULT_TENANT_ID, "a.ndjson", True, run_here=True)
        gc.collect()
        gc.disable()
        try:
            await jobs.run(job_id)
            unreachable.append(gc.collect())
        finally:
            gc.enable()
        assert (await jobs.view(job_id)).errors_count == 2

    assert unreachable == [0, 0]
