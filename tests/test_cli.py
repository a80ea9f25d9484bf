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
