"""The loader and the Python client against a running app: batches, failures with their
lines, resume, idempotent repeats, rate limits, instance files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from loadbay.client import AsyncLoadbay, LoadbayError, _retry_delay
from loadbay.loading.loader import BatchLoader, errors_path, load_instances
from loadbay.loading.state import LoadState, load_identity, state_path
from tests.api.instances.helpers import iid, instance
from tests.factories import activity

Seen = list[tuple[int, int]]


@pytest.fixture
async def loadbay(started: FastAPI) -> AsyncIterator[AsyncLoadbay]:
    key = await started.state.api_keys.create("default", frozenset({"admin"}))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=started)
    async with AsyncLoadbay("http://loadbay.test", key.secret, transport=transport) as client:
        yield client


def activities_file(path: Path, count: int, broken: tuple[int, ...] = ()) -> Path:
    """`count` activities, one per line; the lines in `broken` are not JSON."""
    lines = [b"{broken" if n + 1 in broken else orjson.dumps(activity(n)) for n in range(count)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def read_failures(path: Path) -> list[dict[str, Any]]:
    """The errors file's lines by line number (batches finish, and write, in any order)."""
    lines = errors_path(path).read_text().splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda f: int(f["line"]))


async def stored_activities(client: AsyncLoadbay) -> int:
    response = await client._http.get("/api/v1/activities", params={"limit": 1})
    total: int = response.json()["pagination"]["total"]
    return total


async def batch_jobs(client: AsyncLoadbay) -> int:
    response = await client._http.get("/api/v1/batch-inserts", params={"limit": 1})
    total: int = response.json()["pagination"]["total"]
    return total


async def test_failures_are_written_with_their_line_and_code(
    loadbay: AsyncLoadbay, tmp_path: Path
) -> None:
    path = activities_file(tmp_path / "a.ndjson", 25, broken=(3,))
    lines = path.read_bytes().splitlines()
    lines[10] = orjson.dumps(activity(10, duration_minutes=0))
    path.write_bytes(b"\n".join(lines) + b"\n")
    seen: Seen = []

    summary = await BatchLoader(loadbay, path, "activities", batch_size=10).run(
        lambda done, failed: seen.append((done, failed))
    )

    assert (summary.records, summary.succeeded, summary.failed) == (25, 23, 2)
    failures = read_failures(path)
    assert [(f["line"], f["code"]) for f in failures] == [
        (3, "INVALID_JSON"),
        (11, "validation_error"),
    ]
    assert failures[0]["text"] == "{broken"
    assert failures[1]["record"]["duration_minutes"] == 0
    assert await stored_activities(loadbay) == 23
    assert seen[0] == (0, 0)
    assert seen[-1] == (25, 2)


async def test_a_repeated_load_applies_each_batch_once(
    loadbay: AsyncLoadbay, tmp_path: Path
) -> None:
    path = activities_file(tmp_path / "a.ndjson", 30)
    for _ in range(2):
        await BatchLoader(loadbay, path, "activities", batch_size=10, concurrency=3).run(
            lambda *_: None
        )

    assert await stored_activities(loadbay) == 30
    # The second run's batches carried the same Idempotency-Keys: answered, not run again.
    assert await batch_jobs(loadbay) == 3


async def test_resume_sends_only_the_batches_not_acknowledged(
    loadbay: AsyncLoadbay, tmp_path: Path
) -> None:
    path = activities_file(tmp_path / "a.ndjson", 30)
    # As a load stopped after its second batch leaves it (the first two batches were never
    # sent here: a resume must not send them).
    state = LoadState(load_identity(path, "activities", 10), {0, 1}, records=20, failed=0)
    state.save(state_path(path))

    summary = await BatchLoader(loadbay, path, "activities", batch_size=10, resume=True).run(
        lambda *_: None
    )

    assert (summary.records, summary.failed) == (30, 0)
    assert await batch_jobs(loadbay) == 1
    assert await stored_activities(loadbay) == 10
    assert LoadState.read(state_path(path)) == LoadState(state.identity, {0, 1, 2}, 30, 0)


async def test_resume_refuses_a_file_that_changed(loadbay: AsyncLoadbay, tmp_path: Path) -> None:
    path = activities_file(tmp_path / "a.ndjson", 5)
    LoadState("another-identity", {0}).save(state_path(path))

    with pytest.raises(Exception, match="changed"):
        await BatchLoader(loadbay, path, "activities", resume=True).run(lambda *_: None)


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": "ingest:batch=2/second"}])
async def test_a_rate_limited_load_waits_and_loses_nothing(
    loadbay: AsyncLoadbay, tmp_path: Path
) -> None:
    path = activities_file(tmp_path / "a.ndjson", 50)

    summary = await BatchLoader(loadbay, path, "activities", batch_size=10, concurrency=5).run(
        lambda *_: None
    )

    assert (summary.records, summary.failed) == (50, 0)
    assert await stored_activities(loadbay) == 50


async def test_an_error_no_retry_cures_stops_the_load(started: FastAPI, tmp_path: Path) -> None:
    path = activities_file(tmp_path / "a.ndjson", 5)
    transport = httpx.ASGITransport(app=started)
    async with AsyncLoadbay("http://loadbay.test", "lb_live_wrong", transport=transport) as bad:
        with pytest.raises(LoadbayError) as refused:
            await BatchLoader(bad, path, "activities").run(lambda *_: None)

    assert refused.value.status == 401


async def test_entities_from_csv_after_choosing_a_template(
    loadbay: AsyncLoadbay, tmp_path: Path
) -> None:
    await loadbay.set_template("igaming")
    path = tmp_path / "players.csv"
    rows = [f"player,p{n},p{n}@example.com,Name {n}" for n in range(12)]
    path.write_text("entityType,externalId,data.email,data.first_name\n" + "\n".join(rows))

    summary = await BatchLoader(loadbay, path, "entities", batch_size=5).run(lambda *_: None)

    assert (summary.records, summary.failed) == (12, 0)
    stored = await loadbay._http.get("/operator-data-api/entities/player/p11")
    assert stored.json()["data"]["data"]["email"] == "p11@example.com"


async def test_instances_go_through_a_file_and_a_job(loadbay: AsyncLoadbay, tmp_path: Path) -> None:
    path = tmp_path / "instances.ndjson"
    path.write_bytes(b"\n".join([orjson.dumps(instance(1)), b"nope", orjson.dumps(instance(2))]))
    seen: list[tuple[int, int, Any]] = []

    summary = await load_instances(
        loadbay,
        path,
        "loads/instances.ndjson",
        publish_events=False,
        on_progress=lambda *p: seen.append(p),
    )

    assert (summary.records, summary.failed) == (3, 1)
    (failure,) = [json.loads(line) for line in errors_path(path).read_text().splitlines()]
    assert (failure["id"], failure["code"]) == ("2", "INVALID_JSON")
    assert seen[-1] == (3, 1, 3)
    assert next(f["name"] for f in await loadbay.list_files("loads/")) == "loads/instances.ndjson"
    stored = await loadbay._http.get(f"/instance-storage/instances/{iid(2)}")
    assert stored.json()["_version"] == 1


async def test_a_resumed_instance_load_follows_its_job_instead_of_running_it_again(
    loadbay: AsyncLoadbay, tmp_path: Path
) -> None:
    path = tmp_path / "instances.ndjson"
    path.write_bytes(b"\n".join([orjson.dumps(instance(1)), orjson.dumps(instance(2))]))

    async def load(*, resume: bool) -> tuple[int, int, str | None]:
        summary = await load_instances(
            loadbay,
            path,
            "loads/instances.ndjson",
            publish_events=False,
            on_progress=lambda *_: None,
            resume=resume,
        )
        saved = LoadState.read(state_path(path))
        return summary.records, summary.failed, saved.job if saved else None

    first = await load(resume=False)
    followed = await load(resume=True)
    state_path(path).unlink()  # as if it crashed after starting the job, before saving
    restarted = await load(resume=True)

    job = first[2]
    assert job is not None
    # Run a second time, FOLIO's optimistic locking would fail both records (no _version).
    assert first == followed == restarted == (2, 0, job)
    stored = await loadbay._http.get(f"/instance-storage/instances/{iid(2)}")
    assert stored.json()["_version"] == 1


async def test_a_dry_run_reports_what_would_fail_and_writes_nothing(
    loadbay: AsyncLoadbay, tmp_path: Path
) -> None:
    path = activities_file(tmp_path / "a.ndjson", 12, broken=(2,))
    lines = path.read_bytes().splitlines()
    lines[5] = orjson.dumps(activity(5, duration_minutes=0))
    lines[8] = lines[7]  # the same key twice in one batch
    path.write_bytes(b"\n".join(lines) + b"\n")

    summary = await BatchLoader(loadbay, path, "activities", batch_size=5, dry_run=True).run(
        lambda *_: None
    )

    assert (summary.records, summary.failed, summary.dry_run) == (12, 3, True)
    failures = read_failures(path)
    assert [(f["line"], f["code"]) for f in failures] == [
        (2, "INVALID_JSON"),
        (6, "validation_error"),
        (9, "unique_constraint_violation"),
    ]
    assert await stored_activities(loadbay) == 0
    assert await batch_jobs(loadbay) == 0
    assert not state_path(path).exists()


async def test_operator_batches_validate_against_the_template_without_writing(
    loadbay: AsyncLoadbay,
) -> None:
    await loadbay.set_template("igaming")
    records = [
        {"entityType": "player", "externalId": "p1", "data": {"email": "a@x.io"}},
        {"entityType": "nobody", "externalId": "p2", "data": {}},
        {"entityType": "player", "externalId": "p3", "data": {}},
    ]

    result = await loadbay.validate("entities", records)
    unknown = await loadbay._http.post("/operator-data-api/batch/players/validate", json=[])

    assert [(f.index, f.code) for f in result.failures] == [
        (1, "UNKNOWN_ENTITY_TYPE"),
        (2, "VALIDATION_FAILED"),
    ]
    assert result.answer["data"]["valid"] == 1
    assert (await loadbay._http.get("/operator-data-api/entities/player/p1")).status_code == 404
    assert unknown.status_code == 404


def test_a_key_still_in_use_is_retried_other_conflicts_are_not() -> None:
    in_use = httpx.Response(409, json={"error": {"code": "idempotency_key_in_use"}})
    in_use_upper = httpx.Response(409, json={"error": {"code": "IDEMPOTENCY_KEY_IN_USE"}})
    conflict = httpx.Response(409, json={"error": {"code": "version_conflict"}})

    assert _retry_delay(in_use, 0, retries=3) == _retry_delay(in_use_upper, 0, retries=3) == 0.5
    assert _retry_delay(in_use, 3, retries=3) is None
    assert _retry_delay(conflict, 0, retries=3) is None
