"""Where the CPU went during a line: the server, PostgreSQL, the bench's clients, the machine."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class HasPids(Protocol):
    def pids(self) -> list[int]: ...


def _stat(pid: int | str) -> tuple[str, float] | None:
    """(command name, user + system CPU seconds) of one process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, rest = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
    return name, (int(rest[11]) + int(rest[12])) / CLOCK_TICKS  # utime, stime


def processes_seconds(pids: Iterable[int]) -> dict[int, float]:
    return {int(pid): stat[1] for pid in pids if (stat := _stat(pid))}


def postgres_seconds() -> dict[int, float]:
    """Every PostgreSQL process of this machine (backends, WAL writer, checkpointer, …)."""
    seconds = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(entry.name)) and stat[0] == "postgres":
            seconds[int(entry.name)] = stat[1]
    return seconds


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used in between by the processes alive at the end (new ones from zero)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idling since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def _bench_seconds() -> float:
    times = os.times()
    return times.user + times.system


class CpuWatch:
    """Cores kept busy from construction to `cores()`, by whom.

    Whatever `machine` has beyond the other three is someone else's: a run on a shared
    machine is only comparable with itself.
    """

    def __init__(self, server: HasPids) -> None:
        self.server = server
        self.started = self._now()

    def _now(self) -> tuple[float, dict[int, float], dict[int, float], float, float]:
        return (
            time.monotonic(),
            processes_seconds(self.server.pids()),
            postgres_seconds(),
            _bench_seconds(),
            machine_busy_seconds(),
        )

    def cores(self) -> dict[str, float]:
        start, now = self.started, self._now()
        wall = now[0] - start[0]
        if wall <= 0:
            return {}
        used = {
            "server_cpu_cores": _used(start[1], now[1]),
            "postgres_cpu_cores": _used(start[2], now[2]),
            "bench_cpu_cores": now[3] - start[3],
            "machine_cpu_cores": now[4] - start[4],
        }
        return {name: round(seconds / wall, 2) for name, seconds in used.items()}
