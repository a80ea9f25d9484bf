"""A 200,000-line file goes through a real server in flat memory."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.api.instances.helpers import BULK, instance
from tests.servers import loadbay_env, start_server

pytestmark = pytest.mark.slow

LINES = 200_000


def test_a_200k_line_file_in_flat_memory(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "big.ndjson"
    with path.open("wb") as out:
        for n in range(1, LINES + 1):
            out.write(orjson.dumps(instance(n, notes=[{"note": "x" * 80}])) + b"\n")
    server = start_server(loadbay_env(tmp_path, database_url), tmp_path / "server.log")
    auth = {"Authorization": f"Bearer {server.admin_key()}"}
    try:
        with path.open("rb") as data:
            put = httpx.put(
                f"{server.url}/files/big.ndjson", content=data, headers=auth, timeout=60
            )
        assert put.status_code == 201
        baseline = server.rss_kib()
        accepted = httpx.post(
            f"{server.url}{BULK}",
            json={"recordsFileName": "big.ndjson", "publishEvents": False},
            headers={**auth, "Prefer": "respond-async"},
        )
        peak, job = baseline, {}
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            peak = max(peak, server.rss_kib())
            job = httpx.get(f"{server.url}{accepted.headers['location']}", headers=auth).json()
            if job["status"] != "processing":
                break
            time.sleep(0.2)
    finally:
        server.stop()

    file_mib = path.stat().st_size / 2**20
    growth_mib = (peak - baseline) / 1024
    assert job["status"] == "completed"
    assert job["succeeded"] == LINES
    # Holding the file's records in memory would take several times its size.
    assert file_mib > 40
    assert growth_mib < 60, f"server RSS grew {growth_mib:.0f} MiB for a {file_mib:.0f} MiB file"
