"""Streaming a records file to a server: batches of the surface's size, several in flight.

Every batch carries an Idempotency-Key derived from the load's identity and the batch's
number, so a batch retried (by the client) or sent again (by a resumed load) is applied
once. The state file records each acknowledged batch; the errors file gets each failed
record, with its position, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from loadbay.client import SURFACES, AsyncLoadbay, Surface
from loadbay.loading.readers import Unreadable, file_format, read_records
from loadbay.loading.state import LoadState, load_identity, state_path

ProgressCallback = Callable[[int, int], None]  # records done, of which failed
JOB_POLL_SECONDS = 0.5


class LoadRefused(Exception):
    """The load cannot start as asked (a resume of a file that changed, say)."""


@dataclass(frozen=True)
class Summary:
    file: str
    into: str
    records: int
    failed: int
    seconds: float
    errors_file: str | None
    dry_run: bool = False
    # Of `records`, those done before this run (a resumed load): not part of its speed.
    done_before: int = 0

    @property
    def succeeded(self) -> int:
        return self.records - self.failed

    @property
    def records_per_second(self) -> float:
        """The speed of this run."""
        return (self.records - self.done_before) / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "into": self.into,
            "records": self.records,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "errorsFile": self.errors_file,
            "dryRun": self.dry_run,
            "doneBefore": self.done_before,
        }


def errors_path(path: Path) -> Path:
    return path.with_name(path.name + ".errors.ndjson")


@dataclass
class _Batch:
    number: int
    items: list[tuple[int, Any]]  # (position, record or Unreadable)


class BatchLoader:
    """Loads one file into one batch surface (activities, entities, events, states)."""

    def __init__(
        self,
        client: AsyncLoadbay,
        path: Path,
        into: str,
        *,
        concurrency: int = 4,
        batch_size: int | None = None,
        resume: bool = False,
        dry_run: bool = False,
    ) -> None:
        self._client = client
        self._path = path
        self._surface: Surface = SURFACES[into]
        self._batch_size = min(batch_size or self._surface.batch_size, self._surface.batch_size)
        self._concurrency = concurrency
        self._resume = resume
        # A dry run checks every batch and writes nothing, the state file included.
        self._dry_run = dry_run

    async def run(self, on_progress: ProgressCallback) -> Summary:
        started = time.monotonic()
        identity = load_identity(self._path, self._surface.name, self._batch_size)
        state_file = state_path(self._path)
        state = self._starting_state(identity, state_file)
        done_before = state.records
        errors = errors_path(self._path)
        on_progress(state.records, state.failed)
        with errors.open("ab" if self._resume else "wb") as errors_out:
            await self._send_all(identity, state, state_file, errors_out, on_progress)
        return Summary(
            str(self._path),
            self._surface.name,
            state.records,
            state.failed,
            time.monotonic() - started,
            str(errors) if state.failed else None,
            self._dry_run,
            done_before,
        )

    def _starting_state(self, identity: str, state_file: Path) -> LoadState:
        if self._resume and self._dry_run:
            raise LoadRefused("--dry-run checks a whole file: it cannot be resumed")
        return _starting_state(self._path, identity, state_file, resume=self._resume)

    async def _send_all(
        self,
        identity: str,
        state: LoadState,
        state_file: Path,
        errors_out: BinaryIO,
        on_progress: ProgressCallback,
    ) -> None:
        slots = asyncio.Semaphore(self._concurrency)
        running: set[asyncio.Task[None]] = set()

        async def send(batch: _Batch) -> None:
            try:
                failed = await self._send(identity, batch)
                errors_out.write(b"".join(orjson.dumps(f) + b"\n" for f in failed))
                errors_out.flush()
                state.done.add(batch.number)
                state.records += len(batch.items)
                state.failed += len(failed)
                if not self._dry_run:
                    state.save(state_file)
                on_progress(state.records, state.failed)
            finally:
                slots.release()

        try:
            for batch in self._batches():
                if batch.number in state.done:
                    continue
                await slots.acquire()
                _reap(running)
                running.add(asyncio.create_task(send(batch)))
            await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _batches(self) -> Iterator[_Batch]:
        items: list[tuple[int, Any]] = []
        number = 0
        for item in read_records(self._path, file_format(self._path)):
            items.append(item)
            if len(items) == self._batch_size:
                yield _Batch(number, items)
                number, items = number + 1, []
        if items:
            yield _Batch(number, items)

    async def _send(self, identity: str, batch: _Batch) -> list[dict[str, Any]]:
        """Send the batch's readable records; the failed ones, readable or not, in order."""
        sent = [(p, r) for p, r in batch.items if not isinstance(r, Unreadable)]
        failed = [
            {"line": p, "code": r.code, "message": r.message, "text": r.text}
            for p, r in batch.items
            if isinstance(r, Unreadable)
        ]
        if sent:
            records = [record for _, record in sent]
            if self._dry_run:
                result = await self._client.validate(self._surface.name, records)
            else:
                result = await self._client.batch(
                    self._surface.name, records, idempotency_key=f"load-{identity}-{batch.number}"
                )
            for failure in result.failures:
                position, record = sent[failure.index]
                failed.append(
                    {
                        "line": position,
                        "code": failure.code,
                        "message": failure.message,
                        "record": record,
                    }
                )
        return sorted(failed, key=lambda f: int(f["line"]))


def _starting_state(path: Path, identity: str, state_file: Path, *, resume: bool) -> LoadState:
    """The saved state of this very load when resuming, else a new one."""
    saved = LoadState.read(state_file) if resume else None
    if saved is not None and saved.identity != identity:
        raise LoadRefused(
            f"{path} changed (or the surface or batch size did) since the load that "
            f"{state_file} describes: start it again without --resume"
        )
    return saved or LoadState(identity)


def _reap(running: set[asyncio.Task[None]]) -> None:
    """Forget finished sends; the first that failed stops the load."""
    for task in [t for t in running if t.done()]:
        running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


async def load_instances(
    client: AsyncLoadbay,
    path: Path,
    name: str,
    *,
    publish_events: bool,
    on_progress: Callable[[int, int, int | None], None],
    resume: bool = False,
) -> Summary:
    """Upload the file and run the FOLIO bulk upsert as a job, following its progress; the
    server's error lines come back as `<file>.errors.ndjson`.

    The job runs on the server whatever happens here: `resume` follows the job this file
    started instead of uploading it and running it again.
    """
    started = time.monotonic()
    identity = load_identity(path, f"instances:{name}:events={publish_events}", 0)
    state_file = state_path(path)
    state = _starting_state(path, identity, state_file, resume=resume)
    following = state.job is not None
    if state.job is None:
        await client.put_file(name, path)
        # Keyed: a crash between the job's start and the state's save starts no second job.
        job = await client.bulk_instances(
            name, publish_events=publish_events, idempotency_key=f"load-{identity}"
        )
        state.job = job["id"]
        state.save(state_file)
    else:
        job = await client.job(state.job)
    done_before = job["linesRead"] if following else 0
    while job["status"] == "processing":
        on_progress(job["linesRead"], job["failed"], job["linesTotal"])
        await asyncio.sleep(JOB_POLL_SECONDS)
        job = await client.job(job["id"])
    on_progress(job["linesRead"], job["failed"], job["linesTotal"])
    if job["status"] == "failed":
        raise LoadRefused(f"the bulk upsert job {job['id']} failed: {job['error']}")
    errors = errors_path(path)
    lines = (await client.get_file(job["errorsFileName"])).decode().splitlines()
    with errors.open("wb") as out:
        for line in lines:
            record_id, _, rest = line.partition(", ")
            code, _, message = rest.partition(": ")
            out.write(orjson.dumps({"id": record_id, "code": code, "message": message}) + b"\n")
    records = job["succeeded"] + job["failed"]
    failed = job["failed"]
    return Summary(
        str(path),
        "instances",
        records,
        failed,
        time.monotonic() - started,
        str(errors) if failed else None,
        done_before=done_before,
    )
