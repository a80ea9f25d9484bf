"""Real `loadbay serve` processes for tests that need one (or need to kill one)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def admin_key(self) -> str:
        """The key `loadbay serve` prints on first start."""
        found = re.search(r"lb_live_[A-Za-z0-9]+", self.log.read_text())
        assert found, self.log.read_text()
        return found.group(0)

    def rss_kib(self) -> int:
        """The process's resident memory now."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Fail the test that stopped it, not a later one with a leaked process.
            self.process.kill()
            self.process.wait()
            raise


def start_server(
    env: dict[str, str],
    log: Path,
    timeout: float = 30,
    workers: int = 1,
    cwd: Path | None = None,
) -> Server:
    """One worker unless asked: `kill -9` of a supervisor would leave its workers running."""
    port = free_port()
    command = [LOADBAY, "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("a") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    server = Server(f"http://127.0.0.1:{port}", log, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"loadbay serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop(kill=True)
    raise RuntimeError(f"loadbay serve did not become healthy in {timeout} s")


def established_connections(pid: int, port: int, *, closing_too: bool = False) -> int:
    """How many established TCP connections to local `port` the process `pid` holds; with
    `closing_too`, also those its peer has closed and it has not yet (CLOSE_WAIT)."""
    states = ("01", "08") if closing_too else ("01",)  # ESTABLISHED, CLOSE_WAIT
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] in states:
                inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        held += target.startswith("socket:[") and target[8:-1] in inodes
    return held


def child_processes(parent: int) -> list[int]:
    """The live child processes of `parent` (a supervisor's workers)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return sorted(int(pid) for pid in children)
