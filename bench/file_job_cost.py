"""The server's own work on an instance file, in process: for counting its instructions.

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m bench.file_job_cost --lines 20000     # prints "Collected : N"

A file job (loadbay.files.jobs, events on, optimistic locking off) loads `--lines` instance
lines into a fresh PostgreSQL database and loads them again (all updates), under the
interpreter settings `loadbay serve` runs with. Run twice, with `--lines` and with a tenth
of it: the difference of the two counts over the difference of the lines loaded is the
server's instructions a line, which repeat to within 0.6-1.5% where timings on this
machine move ±15% (see bench/README.md). `--catalogue` loads lines shaped as a catalogue
exports instances (nested lists) instead of four flat fields; each load also prints the
time the garbage collector's passes took.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from bench import pg
from bench.data import catalogue_instance_line, instance_line
from loadbay.config import Settings
from loadbay.files.jobs import FileJobs
from loadbay.files.store import FileStore
from loadbay.runtime import run_loop, settle_heap
from loadbay.storage import migrate
from loadbay.storage.database import Database
from loadbay.storage.tenants import ensure_tenant

TENANT = "bench"
FILE = "bench.ndjson"


async def load_twice(url: str, lines: int, folder: Path, catalogue: bool = False) -> None:
    settings = Settings(database_url=url, data_dir=folder, instance_optimistic_locking="off")
    db = Database(url)
    try:
        await migrate.upgrade(db)
        async with db.write() as unit:
            await ensure_tenant(unit.conn, TENANT, TENANT)
        files = FileStore(settings.files_url)
        line = catalogue_instance_line if catalogue else instance_line
        await files.put_bytes(TENANT, FILE, b"".join(line(n) for n in range(lines)))
        jobs = FileJobs(db, files, settings)
        settle_heap()
        for label in ("first load", "re-load"):
            start, cpu = time.perf_counter(), time.process_time()
            with CollectorTime() as collector:
                await jobs.run(await jobs.create(TENANT, FILE, True, run_here=True))
            seconds = time.perf_counter() - start
            us_a_line = (time.process_time() - cpu) / lines * 1e6
            print(
                f"{label}: {lines / seconds:,.0f} lines/s, {us_a_line:.1f} us of CPU a line, "
                f"{collector.seconds * 1000:,.0f} ms in {collector.passes} collector passes"
            )
    finally:
        await db.dispose()


class CollectorTime:
    """The garbage collector's passes while inside, and the time they took (gc.callbacks):
    a share of the job that timings, moving ±15% on this machine, cannot resolve."""

    def __init__(self) -> None:
        self.passes = 0
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> CollectorTime:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.passes += 1
        self.seconds += time.perf_counter() - self._started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument(
        "--catalogue",
        action="store_true",
        help="lines as a catalogue exports instances (nested lists, ~740 bytes), not four fields",
    )
    parser.add_argument("--postgres-admin-url", default=pg.ADMIN_URL)
    args = parser.parse_args()
    name = pg.fresh_name("file_job_cost")
    pg.create(args.postgres_admin_url, name)
    try:
        url = pg.database_url(args.postgres_admin_url, name, "postgresql+asyncpg")
        with tempfile.TemporaryDirectory() as folder:
            run_loop(load_twice(url, args.lines, Path(folder), args.catalogue))
    finally:
        pg.drop(args.postgres_admin_url, name)


if __name__ == "__main__":
    main()
