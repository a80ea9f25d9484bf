"""Starting, watching and stopping the servers under test, and their memory peaks."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess in a process group of its own, its log in a file.

    `stop()` is idempotent and safe on a process that already died; use it in a `finally`.
    """

    def __init__(
        self, name: str, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            # Only what is given here configures Loadbay, not the LOADBAY_* of the caller's shell.
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("LOADBAY_")},
                **(env or {}),
            },
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        """Poll `path` until it answers (any status below 500)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_text()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def find_in_log(self, pattern: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log_text())
            if match:
                return match.group(1)
            time.sleep(0.1)
        raise RuntimeError(f"{pattern!r} not found in the log of {self.name}")

    def pids(self) -> list[int]:
        """The server process and all its descendants (uvicorn workers, multiprocessing helpers)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def reset_peak_rss(self) -> None:
        """Make VmHWM start again from the current RSS (Linux `clear_refs` 5), where allowed."""
        for pid in self.pids():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_rss_mb(self) -> float | None:
        """Sum of VmHWM over the process tree: peak resident memory since the last reset."""
        peaks = self._peaks_kb()
        return round(sum(peaks) / 1024, 1) if peaks else None

    def peak_rss_largest_mb(self) -> float | None:
        """The largest VmHWM of one process of the tree (a worker's own footprint)."""
        peaks = self._peaks_kb()
        return round(max(peaks) / 1024, 1) if peaks else None

    def _peaks_kb(self) -> list[int]:
        peaks = []
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            if match:
                peaks.append(int(match.group(1)))
        return peaks

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the server's process group, SIGKILL to whatever is left after `timeout`."""
        group = self.process.pid
        try:
            if self.process.poll() is None:
                os.killpg(group, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout)
            # Stragglers (workers whose parent died) are still in the group we created.
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(5)
        self._log_file.close()
