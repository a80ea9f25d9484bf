"""File jobs survive their server: stopped mid-file, restarted, every record lands once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.instances.helpers import BULK, iid, instance, ndjson
from tests.servers import Server, loadbay_env, start_server

pytestmark = pytest.mark.slow

LINES = 20_000


def records_file() -> tuple[bytes, set[int]]:
    """Every 97th line is broken; the line numbers (1-based) of those come back."""
    lines: list[Any] = []
    broken = set()
    for n in range(1, LINES + 1):
        if n % 97 == 0:
            lines.append(b"{broken")
            broken.add(n)
        else:
            lines.append(instance(n))
    return ndjson(*lines), broken


def poll(
    server: Server, auth: dict[str, str], location: str, until: Callable[[dict], bool]
) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.url}{location}", headers=auth).json()
        if until(job):
            return job
        time.sleep(0.05)
    pytest.fail(f"job never reached the expected state: {job}")


@pytest.mark.parametrize(
    ("kill", "stale_seconds"),
    [
        (True, "2"),
        # A graceful stop releases the job: it resumes at once, long before it could go stale.
        (False, "3600"),
    ],
    ids=["kill -9", "SIGTERM"],
)
def test_a_stopped_server_resumes_the_file_exactly_once(
    tmp_path: Path, database_url: str, kill: bool, stale_seconds: str
) -> None:
    env = {
        **loadbay_env(tmp_path, database_url),
        "LOADBAY_FILE_CHUNK_LINES": "500",
        "LOADBAY_JOB_STALE_SECONDS": stale_seconds,
    }
    first = start_server(env, tmp_path / "first.log")
    auth = {"Authorization": f"Bearer {first.admin_key()}"}
    data, broken = records_file()
    try:
        assert (
            httpx.put(f"{first.url}/files/big.ndjson", content=data, headers=auth).status_code
            == 201
        )
        accepted = httpx.post(
            f"{first.url}{BULK}",
            json={"recordsFileName": "big.ndjson"},
            headers={**auth, "Prefer": "respond-async"},
        )
        location = accepted.headers["location"]
        midway = poll(first, auth, location, lambda job: job["linesRead"] >= 4000)
    finally:
        first.stop(kill=kill)
    assert midway["status"] == "processing"
    assert midway["linesRead"] < LINES

    second = start_server(env, tmp_path / "second.log")
    try:
        done = poll(second, auth, location, lambda job: job["status"] != "processing")
        errors = httpx.get(f"{second.url}/files/big.ndjson_errors", headers=auth).text
        failed = httpx.get(f"{second.url}/files/big.ndjson_failedEntities", headers=auth).text
        total = httpx.get(f"{second.url}/instance-storage/instances", headers=auth).json()
        sample = httpx.get(f"{second.url}/instance-storage/instances/{iid(LINES)}", headers=auth)
    finally:
        second.stop()

    good = LINES - len(broken)
    assert done["status"] == "completed"
    assert (done["succeeded"], done["failed"], done["errorsNumber"]) == (
        good,
        len(broken),
        len(broken),
    )
    assert done["linesRead"] == done["linesTotal"] == LINES
    assert total["totalRecords"] == good
    assert sample.json()["_version"] == 1
    error_lines = errors.splitlines()
    assert [int(line.split(",")[0]) for line in error_lines] == sorted(broken)
    assert failed.splitlines() == ["{broken"] * len(broken)
