"""Loadbay end to end: a real `loadbay serve` process driven over HTTP on 127.0.0.1.

1. operator entities, 1,000 per request, at 1, 4 and 16 clients: all inserts, then all updates
2. operator events, 5,000 per request, 4 clients, naming the entities of the 4-client level
3. activities through the batch-insert API, 1,000 per request, 4 clients
4. an NDJSON file of instances uploaded to /files, then bulk-upserted twice (inserts, updates)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from bench import data, pg
from bench.client import Measurement, measure, print_line, warm_up
from bench.cpu import CpuWatch
from bench.plan import CLIENT_LEVELS, Run
from bench.server import VENV_BIN, Server, free_port

RATE_LIMITS = ",".join(
    f"{scope}=1000000/minute" for scope in ("ingest:batch", "ingest:files", "read", "admin")
)
KEY_IN_LOG = r"admin API key \(shown this once, store it now\): (lb_live_\S+)"
LEVEL_KEYS = 10_000_000  # entity numbers of level i start at i * LEVEL_KEYS: first pass inserts
WARM_UP = range(90_000_000, 90_008_000)  # two batches for each warm-up client
FILE_TIMEOUT = 1800.0  # the bulk call is synchronous: it answers when the whole file is written


def start(run: Run, python_path: Path | None = None) -> tuple[Server, str]:
    """A fresh `loadbay serve` on a fresh database; returns it and its admin key.

    With `python_path`, the server imports `loadbay` from that checkout instead (bench.ab).
    """
    folder = run.tmp / "loadbay-data"
    folder.mkdir()
    if run.postgres:
        url = pg.database_url(run.admin_url, run.new_database("loadbay"), "postgresql+asyncpg")
    else:
        url = f"sqlite+aiosqlite:///{folder / 'loadbay.db'}"
    env = {
        "LOADBAY_DATA_DIR": str(folder),
        "LOADBAY_DATABASE_URL": url,
        "LOADBAY_RATE_LIMITS": RATE_LIMITS,
        "LOADBAY_AUTH": "on",
        # The re-load sends the same file again, without `_version`: a load that must win.
        "LOADBAY_INSTANCE_OPTIMISTIC_LOCKING": "off",
    }
    if python_path is not None:
        inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
        env["PYTHONPATH"] = os.pathsep.join([str(python_path), *inherited])
    port = free_port()
    argv = [str(VENV_BIN / "loadbay"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Server("loadbay", argv, port, run.tmp / "loadbay.log", env)
    try:
        server.wait_ready("/healthz", timeout=120)
        return server, server.find_in_log(KEY_IN_LOG)
    except BaseException:
        server.stop()
        raise


def run_all(run: Run, out: list[Measurement]) -> None:
    server, key = start(run)
    try:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        response = httpx.put(
            f"{server.url}/operator-data-api/settings",
            headers=headers,
            json={"templateId": "igaming"},
            timeout=60,
        )
        response.raise_for_status()
        warm_up(server, "/operator-data-api/batch/entities", data.entity_batches(WARM_UP), headers)
        warm_up(server, "/api/v1/batch-inserts", data.activity_batches(WARM_UP), headers)
        entities(run, server, headers, out)
        events(run, server, headers, out)
        activities(run, server, headers, out)
        files(run, server, headers, out)
    finally:
        server.stop()


def entities(run: Run, server: Server, headers: dict[str, str], out: list[Measurement]) -> None:
    for level, clients in enumerate(CLIENT_LEVELS):
        numbers = range(level * LEVEL_KEYS, level * LEVEL_KEYS + run.plan.entities(clients))
        for op, updated in (("insert", False), ("update", True)):
            out.append(
                measure(
                    server,
                    f"entities {op}, {clients} client{'s' if clients > 1 else ''}",
                    "loadbay",
                    op,
                    "/operator-data-api/batch/entities",
                    data.entity_batches(numbers, updated),
                    clients=clients,
                    headers=headers,
                    count_failures=operator_failures,
                )
            )


def events(run: Run, server: Server, headers: dict[str, str], out: list[Measurement]) -> None:
    level = CLIENT_LEVELS.index(4)
    existing = range(level * LEVEL_KEYS, level * LEVEL_KEYS + run.plan.entities(4))
    out.append(
        measure(
            server,
            "events insert, 4 clients",
            "loadbay",
            "insert",
            "/operator-data-api/batch/events",
            data.event_batches(range(run.plan.events), existing),
            clients=4,
            headers=headers,
            count_failures=operator_failures,
            rows="events",
        )
    )


def activities(run: Run, server: Server, headers: dict[str, str], out: list[Measurement]) -> None:
    out.append(
        measure(
            server,
            "activities insert, 4 clients",
            "loadbay",
            "insert",
            "/api/v1/batch-inserts",
            data.activity_batches(range(run.plan.activities)),
            clients=4,
            headers=headers,
            count_failures=activity_failures,
            rows="activities",
        )
    )


def files(run: Run, server: Server, headers: dict[str, str], out: list[Measurement]) -> None:
    first = 0
    for lines in run.plan.file_lines:
        path = run.tmp / f"instances-{lines}.ndjson"
        size = data.write_instances(path, range(first, first + lines))
        first += lines  # each file has ids of its own: its first load is all inserts
        try:
            file_loads(server, headers, path, lines, size, out)
        finally:
            path.unlink()


def file_loads(
    server: Server,
    headers: dict[str, str],
    path: Path,
    lines: int,
    size: int,
    out: list[Measurement],
) -> None:
    name = f"in/{path.name}"
    with httpx.Client(base_url=server.url, headers=headers, timeout=FILE_TIMEOUT) as client:
        start = time.perf_counter()
        upload = client.put(
            f"/files/{name}",
            content=data.read_chunks(path),
            headers={"Content-Type": "application/x-ndjson"},
        )
        uploaded = time.perf_counter() - start
        notes = {"file_mb": round(size / 2**20, 1), "upload_seconds": round(uploaded, 2)}
        if not upload.is_success:
            print(f"    upload of {name} failed: HTTP {upload.status_code}: {upload.text[:500]}")
        for op in ("insert", "update"):
            label = "first load" if op == "insert" else "re-load (updates)"
            seen = Measurement(f"file {lines:,} lines, {label}", "loadbay", op, 1, 0, 0, 0.0)
            seen.notes, seen.rows = dict(notes), "instances"
            server.reset_peak_rss()
            watch = CpuWatch(server)
            start = time.perf_counter()
            try:
                response = client.post(
                    "/instance-storage/instances/bulk", json={"recordsFileName": name}
                )
            except httpx.HTTPError as error:
                response = None
                seen.first_error = f"{type(error).__name__}: {error}"
            seen.seconds = time.perf_counter() - start
            seen.latencies_ms = [seen.seconds * 1000]
            seen.peak_rss_mb = server.peak_rss_mb()
            seen.notes["peak_rss_largest_process_mb"] = server.peak_rss_largest_mb()
            seen.notes.update(watch.cores())
            _file_outcome(seen, response, lines)
            out.append(seen)
            print_line(seen)


def _file_outcome(seen: Measurement, response: httpx.Response | None, lines: int) -> None:
    if response is None or not response.is_success:
        seen.failed, seen.failed_requests = lines, 1
        if response is not None:
            seen.first_error = f"HTTP {response.status_code}: {response.text[:500]}"
        print(f"    bulk upsert failed: {seen.first_error}")
        return
    errors = int(response.json().get("errorsNumber", 0))
    seen.records, seen.failed = lines - errors, errors
    if errors:
        seen.first_error = f"{errors} errors, see {response.json().get('errorsFileName')}"
        print(f"    bulk upsert: {seen.first_error}")


def operator_failures(answer: Any) -> tuple[int, str | None]:
    result = answer.get("data", {}) if isinstance(answer, dict) else {}
    errors = result.get("errors") or []
    return int(result.get("failed", 0)), (str(errors[0]) if errors else None)


def activity_failures(answer: Any) -> tuple[int, str | None]:
    if not isinstance(answer, dict):
        return 0, None
    failed = [r for r in answer.get("results", []) if r.get("status") != "success"]
    return int(answer.get("failed_count", len(failed))), (str(failed[0]) if failed else None)
