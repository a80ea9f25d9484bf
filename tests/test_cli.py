"""The `loadbay` command as a user runs it: migrate, and serve a real process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from loadbay.storage import migrate
from tests.factories import BATCHES, activity, batch

LOADBAY = str(Path(sys.executable).with_name("loadbay"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loadbay_env(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADBAY_")}
    env["LOADBAY_DATA_DIR"] = str(tmp_path / "data")
    if database_url:
        env["LOADBAY_DATABASE_URL"] = database_url
    return env


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


@dataclass
class Server:
    url: str
    log: Path

    def admin_key(self) -> str:
        """The key `loadbay serve` prints on first start."""
        found = re.search(r"lb_live_[A-Za-z0-9]+", self.log.read_text())
        assert found, self.log.read_text()
        return found.group(0)


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [LOADBAY, "serve", "--port", str(port)],
        env=loadbay_env(tmp_path, database_url),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail((tmp_path / "server.log").read_text())
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not become healthy in 30 s")
        yield Server(base, tmp_path / "server.log")
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


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
