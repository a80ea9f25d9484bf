"""The `loadbay` command as a user runs it: migrate, and serve a real process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadbay.storage import migrate
from tests.domain_events.broker_readers import broker_url, redis_reader, unique_names
from tests.factories import BATCHES, activity, batch
from tests.servers import LOADBAY, Server, child_processes, loadbay_env, start_server


def test_migrate_creates_the_embedded_database(tmp_path: Path) -> None:
    result = subprocess.run(
        [LOADBAY, "migrate"],
        env=loadbay_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert f"migrated to revision {migrate.head_revision()}" in result.stderr
    assert (tmp_path / "data" / "loadbay.db").exists()


def test_serve_refuses_an_unknown_database_scheme(tmp_path: Path) -> None:
    result = subprocess.run(
        [LOADBAY, "migrate"],
        env=loadbay_env(tmp_path, "mysql+aiomysql://root@127.0.0.1/test"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "unsupported database 'mysql'" in result.stderr


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    running = start_server(loadbay_env(tmp_path, database_url), tmp_path / "server.log")
    yield running
    running.stop()


@pytest.mark.slow
def test_served_process_takes_a_batch_with_the_printed_admin_key(
    server: Server, backend: str
) -> None:
    auth = {"Authorization": f"Bearer {server.admin_key()}"}
    health = httpx.get(f"{server.url}/healthz").json()
    anonymous = httpx.post(f"{server.url}{BATCHES}", json=batch(activity(1)))
    created = httpx.post(
        f"{server.url}{BATCHES}", json=batch(activity(1), activity(1)), headers=auth
    )

    dialect = "postgresql" if backend == "postgres" else "sqlite"
    assert health == {"status": "ok", "database": dialect}
    assert anonymous.status_code == 401
    assert created.status_code == 201
    assert created.json()["inserted_count"] == 1
    assert httpx.get(f"{server.url}/docs").status_code == 200


@pytest.mark.slow
def test_several_workers_print_one_admin_key_and_share_the_load(
    tmp_path: Path, database_url: str
) -> None:
    server = start_server(loadbay_env(tmp_path, database_url), tmp_path / "s.log", workers=2)
    try:
        auth = {"Authorization": f"Bearer {server.admin_key()}"}
        # A new connection per batch: the kernel spreads them over both workers.
        created = [
            httpx.post(f"{server.url}{BATCHES}", json=batch(activity(n)), headers=auth)
            for n in range(8)
        ]
        listed = httpx.get(f"{server.url}{BATCHES}", headers=auth).json()
        parent_mappings = Path(f"/proc/{server.process.pid}/maps").read_text()
    finally:
        server.stop()

    log = server.log.read_text()
    # The parent only watches the workers: it let go of what migrating had loaded.
    assert "sqlalchemy" not in parent_mappings
    assert "pydantic_core" not in parent_mappings
    assert log.count("Started server process") == 2
    assert len(re.findall(r"admin API key .*lb_live_", log)) == 1
    assert [r.status_code for r in created] == [201] * 8
    access_line = (
        r"\[\w+\] loadbay\.access: POST /api/v1/batch-inserts 201 [\d.]+ ms "
        r"tenant=default key_prefix=lb_live_\w+ records=1$"
    )
    assert len(re.findall(access_line, log, re.MULTILINE)) == 8
    assert listed["pagination"]["total"] == 8


def test_a_worker_that_dies_is_started_again(tmp_path: Path, database_url: str) -> None:
    server = start_server(loadbay_env(tmp_path, database_url), tmp_path / "s.log", workers=2)
    try:
        first = child_processes(server.process.pid)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = child_processes(server.process.pid)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.2)
        answers = [httpx.get(f"{server.url}/livez").status_code for _ in range(10)]
    finally:
        server.stop()

    assert len(first) == 2
    assert len(now) == 2
    assert first[0] not in now
    assert answers == [200] * 10
    assert f"worker process [{first[0]}] exited" in server.log.read_text()


def test_a_second_server_on_the_port_of_a_running_one_fails(
    tmp_path: Path, database_url: str
) -> None:
    env = loadbay_env(tmp_path, database_url)
    first = start_server(env, tmp_path / "first.log", workers=2)
    port = first.url.rsplit(":", 1)[1]
    try:
        second = subprocess.run(
            [LOADBAY, "serve", "--port", port, "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        still_served = httpx.get(f"{first.url}/livez").status_code
    finally:
        first.stop()

    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert still_served == 200


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path, database_url: str) -> None:
    server = start_server(loadbay_env(tmp_path, database_url), tmp_path / "s.log", workers=2)
    workers = child_processes(server.process.pid)
    server.stop(kill=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)

    assert len(workers) == 2
    assert not [pid for pid in workers if _alive(pid)]


def test_a_killed_supervisors_scratch_files_go_when_the_next_one_starts(
    tmp_path: Path, database_url: str
) -> None:
    """A supervisor shares a folder (metrics) and a file (connection counts) with its
    workers; killed, it cannot remove them, so the next server does."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = loadbay_env(tmp_path, database_url) | {"TMPDIR": str(scratch)}

    def ours() -> set[str]:
        return {path.name for path in scratch.iterdir() if path.name.startswith("loadbay-")}

    killed = start_server(env, tmp_path / "killed.log", workers=2)
    left = ours()
    killed.stop(kill=True)
    server = start_server(env, tmp_path / "next.log", workers=2)
    try:
        beside_the_next = ours()
    finally:
        server.stop()

    assert sorted(name.split("-")[1] for name in left) == ["connections", "metrics"]
    assert not left & beside_the_next
    assert len(beside_the_next) == 2
    assert ours() == set()


def test_with_a_broker_the_relay_runs_beside_the_workers_and_is_restarted(
    tmp_path: Path, database_url: str
) -> None:
    url = broker_url("redis")
    names = unique_names()
    env = loadbay_env(tmp_path, database_url)
    env |= {"LOADBAY_EVENTS_URL": url, "LOADBAY_EVENTS_ENV": names["events_env"]}
    env["LOADBAY_EVENTS_SUBJECT"] = names["events_subject"]
    server = start_server(env, tmp_path / "s.log", workers=2)
    auth = {"Authorization": f"Bearer {server.admin_key()}"}
    try:
        children = _children_by_module(server.process.pid)
        niceness = {pid: _niceness(pid) for pids in children.values() for pid in pids}
        httpx.post(f"{server.url}{BATCHES}", json=batch(activity(1)), headers=auth)
        first_relay = children["loadbay.relay_process"][0]
        os.kill(first_relay, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            relays = _children_by_module(server.process.pid).get("loadbay.relay_process", [])
            if relays and first_relay not in relays:
                break
            time.sleep(0.2)
        httpx.post(f"{server.url}{BATCHES}", json=batch(activity(2)), headers=auth)
        published = asyncio.run(_read_redis(url, names, expected=2))
    finally:
        server.stop(kill=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(relays[0]):
        time.sleep(0.2)

    assert {module: len(pids) for module, pids in children.items()} == {
        "loadbay.serving_worker": 2,
        "loadbay.relay_process": 1,
    }
    # Under a full load the workers yield the cores to the relay, which then keeps up.
    assert {niceness[pid] for pid in children["loadbay.serving_worker"]} == {5}
    assert niceness[first_relay] == 0
    assert relays
    assert first_relay not in relays
    assert [key for key, _ in published] == [
        "mentor-1:group_workshop:2026-03-28",
        "mentor-2:group_workshop:2026-03-28",
    ]
    assert f"relay process [{first_relay}] exited" in server.log.read_text()
    assert not _alive(relays[0])  # it stops with its supervisor, as the workers do


async def _read_redis(url: str, names: dict[str, str], expected: int) -> list[Any]:
    """What the relay appended, once `expected` events are there (10 s at most)."""
    async with redis_reader(url, names) as read:
        for _ in range(100):
            if len(received := await read(expected)) >= expected:
                return received
            await asyncio.sleep(0.1)
        return received


def _children_by_module(parent: int) -> dict[str, list[int]]:
    """The parent's live children by the module they run (`python -m MODULE`)."""
    found: dict[str, list[int]] = {}
    for pid in child_processes(parent):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"-m" in argv:  # not a zombie yet to be reaped (its command line is gone)
            found.setdefault(argv[argv.index(b"-m") + 1].decode(), []).append(pid)
    return found


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _alive(pid: int) -> bool:
    """Running, not a zombie awaiting its (dead) parent's reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_serve_imports_nothing_from_the_folder_it_is_started_in(
    tmp_path: Path, database_url: str
) -> None:
    folder = tmp_path / "workdir"
    (folder / "loadbay").mkdir(parents=True)  # a data folder, say
    (folder / "uvicorn.py").write_text("raise SystemExit('the working folder was imported')\n")
    env = loadbay_env(tmp_path, database_url)
    server = start_server(env, tmp_path / "s.log", workers=2, cwd=folder)
    try:
        ready = httpx.get(f"{server.url}/readyz")
    finally:
        server.stop()

    assert ready.status_code == 200, ready.text


def run_loadbay(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOADBAY, *args],
        env={**loadbay_env(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_create_list_and_revoke(tmp_path: Path) -> None:
    created = run_loadbay(
        tmp_path, "keys", "create", "--tenant", "acme", "--scope", "read", "--name", "etl"
    )
    secret = created.stdout.strip()
    listed = run_loadbay(tmp_path, "keys", "list", "--tenant", "acme").stdout.splitlines()
    prefix = listed[0].split("\t")[0]
    revoked = run_loadbay(tmp_path, "keys", "revoke", prefix)
    again = run_loadbay(tmp_path, "keys", "revoke", prefix)
    after = run_loadbay(tmp_path, "keys", "list").stdout.splitlines()

    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"lb_live_[A-Za-z0-9]{32}", secret)
    assert secret.startswith(prefix)
    assert listed[0].split("\t")[1:4] == ["acme", "etl", "read"]
    assert revoked.returncode == 0
    assert again.returncode == 1
    assert after[0].split("\t")[6] != ""


@pytest.mark.parametrize(
    "args",
    [
        ("--tenant", "acme", "--scope", "superuser"),
        ("--tenant", "acme.corp", "--scope", "read"),
        ("--tenant", "acme"),
    ],
)
def test_keys_create_refuses_bad_input(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_loadbay(tmp_path, "keys", "create", *args)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_relay_needs_a_broker(tmp_path: Path) -> None:
    result = run_loadbay(tmp_path, "relay")

    assert result.returncode == 2
    assert "LOADBAY_EVENTS_URL is not set" in result.stderr


def test_files_put_ls_get_through_a_server(server: Server, tmp_path: Path) -> None:
    env = {"LOADBAY_URL": server.url, "LOADBAY_API_KEY": server.admin_key()}
    source = tmp_path / "records.ndjson"
    source.write_bytes(b'{"a": 1}\n' * 50_000)

    put = run_loadbay(tmp_path, "files", "put", str(source), "in/records.ndjson", **env)
    listed = run_loadbay(tmp_path, "files", "ls", "--prefix", "in/", **env)
    got = run_loadbay(tmp_path, "files", "get", "in/records.ndjson", str(tmp_path / "back"), **env)
    missing = run_loadbay(tmp_path, "files", "get", "nope", **env)

    assert put.returncode == 0, put.stderr
    assert listed.stdout.split("\t")[:2] == ["in/records.ndjson", str(source.stat().st_size)]
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "back").read_bytes() == source.read_bytes()
    assert missing.returncode == 1
    assert "404" in missing.stderr


@pytest.mark.slow
def test_json_logs_are_one_object_per_line_with_the_request_id(
    tmp_path: Path, database_url: str
) -> None:
    env = {**loadbay_env(tmp_path, database_url), "LOADBAY_LOG_FORMAT": "json"}
    server = start_server(env, tmp_path / "json.log")
    try:
        secret = server.admin_key()
        auth = {"Authorization": f"Bearer {secret}", "X-Request-Id": "trace-9"}
        httpx.post(f"{server.url}{BATCHES}", json=batch(activity(1), activity(2)), headers=auth)
    finally:
        server.stop()

    lines = [json.loads(line) for line in (tmp_path / "json.log").read_text().splitlines() if line]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"].startswith("database migrated") for line in lines)
    assert any("admin API key" in line["message"] for line in lines)
    (access,) = [line for line in lines if line.get("request_id") == "trace-9"]
    assert access["logger"] == "loadbay.access"
    assert access["message"].startswith("POST /api/v1/batch-inserts 201 ")
    assert (access["method"], access["path"], access["status"]) == ("POST", BATCHES, 201)
    assert access["duration_ms"] > 0
    assert (access["tenant"], access["records"]) == ("default", 2)
    assert secret.startswith(access["key_prefix"])
    assert len(access["key_prefix"]) < len(secret)
    showing_the_key = [line["message"] for line in lines if secret in json.dumps(line)]
    assert len(showing_the_key) == 1
    assert "shown this once" in showing_the_key[0]
