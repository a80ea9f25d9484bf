"""File jobs: a records file upserted chunk by chunk, resumable from the chunks it committed.

Each chunk of lines is one transaction: its records, its job counters, its outbox events and
its listing as committed go together. Several chunks are written at once, on connections of
their own; those that share a record commit in file order. A chunk's error lines are written
to a part object of its own just before its commit (overwritten if the chunk is ever redone),
and the parts are joined into `<file>_errors` and `<file>_failedEntities` at the end, in line
order: complete, and without duplicate lines.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from loadbay import metrics
from loadbay.background import sleep_unless_stopped
from loadbay.config import Settings
from loadbay.errors import NotFound
from loadbay.events.outbox import EventContext
from loadbay.files.chunk_writers import ChunkWriters
from loadbay.files.lines import is_gzipped, lines
from loadbay.files.store import FileStore
from loadbay.ingest.engine import PreparedRecords, prepare_records, write_prepared
from loadbay.ingest.ids import HexIds
from loadbay.ingest.instances import OptimisticLocking, instances_collection
from loadbay.outcomes import JobStatus, final_status
from loadbay.storage import file_jobs as store
from loadbay.storage import jobs as job_store
from loadbay.storage.database import Database, lost_a_race
from loadbay.storage.types import utcnow

log = logging.getLogger("loadbay.files")

KIND = "instances_bulk"
# A file this large changes the table enough to refresh its planner statistics.
ANALYZE_AFTER_LINES = 10_000
# Lines parsed between two chances for the chunks being written to send their next statement.
_YIELD_EVERY = 250
# How long a stop waits for the chunks being written to commit before cutting them.
STOP_GRACE_SECONDS = 20.0
INVALID_JSON = "INVALID_JSON"


class LostClaim(Exception):
    """Another node took the job over (this one looked dead): stop without writing."""


@dataclass(frozen=True)
class ErrorFiles:
    records: str
    errors: str


def error_files(records_file: str) -> ErrorFiles:
    return ErrorFiles(f"{records_file}_failedEntities", f"{records_file}_errors")


@dataclass
class _Chunk:
    number: int
    lines: list[tuple[int, bytes]]


@dataclass
class _ParsedChunk:
    chunk: _Chunk
    prepared: PreparedRecords
    # Lines that failed before the database: (record id or line number, code, message).
    failed: dict[int, tuple[str, str, str]]


class FileJobs:
    def __init__(self, db: Database, files: FileStore, settings: Settings) -> None:
        self._db = db
        self._files = files
        self._settings = settings
        self._collection = instances_collection(
            settings.hrid_prefix, OptimisticLocking(settings.instance_optimistic_locking)
        )
        self.ids = HexIds("job_")
        self.node = f"{socket.gethostname()}:{os.getpid()}"

    async def create(
        self, tenant_id: str, records_file: str, publish_events: bool, *, run_here: bool
    ) -> int:
        """A job row; claimed by this node when it runs the job inline (synchronously)."""
        await self._files.size(tenant_id, records_file)
        now = utcnow()
        async with self._db.write() as unit:
            job = await job_store.create_job(
                unit,
                tenant_id=tenant_id,
                kind=KIND,
                collection=self._collection.name,
                record_count=0,
                now=now,
            )
            await store.add_file_job(
                unit.conn,
                {
                    "job_id": job.id,
                    "records_file": records_file,
                    "publish_events": publish_events,
                    "chunk_lines": self._settings.file_chunk_lines,
                    "lines_done": 0,
                    "lines_total": None,
                    "errors_count": 0,
                    "claimed_by": self.node if run_here else None,
                    "heartbeat_at": now if run_here else None,
                    "error": None,
                },
            )
        return job.id

    async def view(self, job_id: int, tenant_id: str | None = None) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await store.find_file_job(conn, job_id, tenant_id)
        if row is None:
            raise NotFound(f"job {self.ids.format(job_id)} not found")
        return dict(row)

    async def run(self, job_id: int) -> None:
        """Process the job's chunks not committed yet, to the end. The caller holds the claim."""
        job = await self.view(job_id)
        if job["status"] != JobStatus.PROCESSING.value:
            return
        tenant, name = job["tenant_id"], job["records_file"]
        try:
            if job["lines_total"] is None:
                job["lines_total"] = await self._count_lines(tenant, name)
                async with self._db.write() as unit:
                    await store.set_total(unit.conn, job_id, job["lines_total"], utcnow())
            async with self._db.read() as conn:
                committed = await store.committed_chunks(conn, job_id)
            chunks = self._chunks(tenant, name, job["chunk_lines"], committed)
            await self._pipeline(job, chunks, await self._error_parts(tenant, name))
            await self._finish(job)
        except LostClaim:
            log.warning("file job %s was taken over by another node", self.ids.format(job_id))
        except asyncio.CancelledError:
            # A graceful stop: give the job up, so that a live worker resumes it at once
            # instead of waiting for the heartbeat to go stale.
            async with self._db.write() as unit:
                await store.release(unit.conn, job_id, self.node)
            log.info(
                "file job %s released: it resumes with the chunks not committed",
                self.ids.format(job_id),
            )
            raise
        except Exception as error:
            log.exception("file job %s failed", self.ids.format(job_id))
            async with self._db.write() as unit:
                await store.finish(unit.conn, job_id, JobStatus.FAILED.value, utcnow(), str(error))
            raise

    async def counts(self) -> dict[str, int]:
        """File jobs by status, every tenant's: `processing` is the queue's depth."""
        async with self._db.read() as conn:
            return await store.count_by_status(conn)

    async def claim(self, stale_after: timedelta) -> int | None:
        now = utcnow()
        async with self._db.write() as unit:
            return await store.claim_abandoned(unit.conn, self.node, now - stale_after, now)

    async def _count_lines(self, tenant: str, name: str) -> int:
        count = 0
        async for _ in lines(await self._files.read(tenant, name), gzipped=is_gzipped(name)):
            count += 1
        return count

    async def _chunks(
        self, tenant: str, name: str, size: int, committed: set[int]
    ) -> AsyncIterator[_Chunk]:
        """The file's chunks of `size` lines, but those committed already."""
        current: list[tuple[int, bytes]] = []
        number, line_no = 0, 0
        async for line in lines(await self._files.read(tenant, name), gzipped=is_gzipped(name)):
            number = line_no // size
            line_no += 1
            if number in committed:
                continue
            current.append((line_no, line))
            if line_no % size == 0:
                yield _Chunk(number, current)
                current = []
        if current:
            yield _Chunk(number, current)

    async def _error_parts(self, tenant: str, name: str) -> set[str]:
        """The error parts of the job's chunks stored so far (at a run's start, also those of
        chunks an earlier run wrote but may not have committed)."""
        files = error_files(name)
        return {
            part.name
            for base in (files.errors, files.records)
            for part in await self._files.list(tenant, f"{base}.parts/")
        }

    async def _pipeline(
        self, job: dict[str, Any], chunks: AsyncIterator[_Chunk], parts: set[str]
    ) -> None:
        """Parse and validate the next chunk while earlier ones are written and committed.

        Chunks that share nothing commit in any order (ChunkWriters): a record's lines still
        take effect in file order, and a link may name a record of an earlier chunk.
        """
        writers = ChunkWriters(self._settings.file_chunk_writers, STOP_GRACE_SECONDS)
        try:
            async for chunk in chunks:
                parsed = await self._parse(job, chunk)
                touched = self._collection.touched(p.row for p in parsed.prepared.ordered)
                await writers.start(touched, functools.partial(self._commit, job, parsed, parts))
            await writers.finish()
        except BaseException as error:
            failures = await writers.abandon()
            for failure in failures:
                if failure is not error:  # that one, `run` reports
                    log.warning(
                        "file job %s: a chunk failed: %r", self.ids.format(job["id"]), failure
                    )
            # Another node owns the job now (it found this one silent): do not fail it. A stop
            # stays a stop, so that `run` hands the job back.
            lost = any(isinstance(failure, LostClaim) for failure in failures)
            if lost and not isinstance(error, asyncio.CancelledError):
                raise LostClaim from error
            raise

    async def _parse(self, job: dict[str, Any], chunk: _Chunk) -> _ParsedChunk:
        records, failed = [], {}
        for count, (line_no, raw) in enumerate(chunk.lines, 1):
            if count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the chunks being written take their next step
            if not raw.strip():
                continue
            try:
                records.append((line_no, orjson.loads(raw)))
            except orjson.JSONDecodeError as error:
                failed[line_no] = (str(line_no), INVALID_JSON, f"line is not JSON: {error}")
        prepared = prepare_records(
            self._collection,
            job["tenant_id"],
            records,
            mode=self._collection.on_conflict,
            now=utcnow(),
        )
        return _ParsedChunk(chunk, prepared, failed)

    async def _commit(self, job: dict[str, Any], parsed: _ParsedChunk, parts: set[str]) -> None:
        """Write a chunk; once more, parsed afresh, if the database rolled it back to let a
        concurrent chunk through (`lost_a_race`: a deadlock over stored title links, which
        chunks written at once may share, or an hrid one of them took meanwhile)."""
        try:
            await self._write_chunk(job, parsed, parts)
        except Exception as error:
            if not lost_a_race(error):
                raise
            log.warning(
                "file job %s: chunk %d was rolled back (%s); writing it again",
                self.ids.format(job["id"]),
                parsed.chunk.number,
                error,
            )
            await self._write_chunk(job, await self._parse(job, parsed.chunk), parts)

    async def _write_chunk(
        self, job: dict[str, Any], parsed: _ParsedChunk, parts: set[str]
    ) -> None:
        tenant, name, chunk, failed = (
            job["tenant_id"],
            job["records_file"],
            parsed.chunk,
            parsed.failed,
        )
        raw_by_line = dict(chunk.lines)
        events = EventContext(self.ids.format(job["id"])) if job["publish_events"] else None
        async with self._db.write() as unit:
            results = await write_prepared(
                unit,
                self._collection,
                tenant,
                parsed.prepared,
                # The whole chunk in one statement: its lines commit together.
                chunk_size=len(parsed.prepared.ordered) or 1,
                events=events,
            )
            for result in results:
                if not result.succeeded:
                    failed[result.index] = (
                        _identity(result.payload, result.index),
                        result.error or "",
                        result.message or "",
                    )
            # Listed and claimed before its error parts are written: a run that has lost the
            # job, or whose chunk another run committed, stops here without touching them.
            if not await store.advance(
                unit.conn,
                job["id"],
                self.node,
                chunk=chunk.number,
                lines=len(chunk.lines),
                errors=len(failed),
                now=utcnow(),
            ):
                raise LostClaim
            await self._write_parts(tenant, name, chunk.number, failed, raw_by_line, parts)
            await store.add_counts(
                unit.conn, job["id"], sum(r.succeeded for r in results), len(failed), utcnow()
            )
        outcomes = [r.outcome.value for r in results if r.succeeded]
        metrics.count_records(self._collection.name, tenant, [*outcomes, *["failed"] * len(failed)])
        metrics.FILE_LINES.inc(len(chunk.lines))

    async def _write_parts(
        self,
        tenant: str,
        name: str,
        number: int,
        failed: dict[int, tuple[str, str, str]],
        raw_by_line: dict[int, bytes],
        parts: set[str],
    ) -> None:
        """The chunk's error parts; `parts`, those stored, is kept up to date."""
        files = error_files(name)
        names = [_part(base, number) for base in (files.errors, files.records)]
        if not failed:
            # A redone chunk may have failed records the first time and none now. Only then:
            # two deletes a chunk were two requests inside its transaction on S3.
            for part in names:
                if part in parts:
                    await self._files.delete(tenant, part)
                    parts.discard(part)
            return
        ordered = sorted(failed)
        errors = "".join(
            f"{failed[n][0]}, {failed[n][1]}: {_one_line(failed[n][2])}\n" for n in ordered
        )
        records = b"".join(raw_by_line[n] + b"\n" for n in ordered)
        await self._files.put_bytes(tenant, names[0], errors.encode())
        await self._files.put_bytes(tenant, names[1], records)
        parts.update(names)

    async def _finish(self, job: dict[str, Any]) -> None:
        tenant, name = job["tenant_id"], job["records_file"]
        files = error_files(name)
        parts = await self._error_parts(tenant, name)
        for base in (files.errors, files.records):
            own = sorted(part for part in parts if part.startswith(f"{base}.parts/"))
            await self._files.put(tenant, base, self._joined(tenant, own), max_bytes=2**62)
        async with self._db.write() as unit:
            current = await job_store.find_job(unit.conn, tenant, KIND, job["id"])
            status = (
                final_status(current.succeeded_count, current.record_count)
                if current
                else JobStatus.COMPLETED
            )
            await store.finish(unit.conn, job["id"], status.value, utcnow())
        # The parts go once the job is marked done: a crash before that rebuilds the files.
        for part in parts:
            await self._files.delete(tenant, part)
        if (job["lines_total"] or 0) >= ANALYZE_AFTER_LINES:
            table = self._collection.target.table.name
            try:
                await self._db.analyze(table)
            except Exception:
                # The job is done and committed; stale statistics only cost speed.
                log.warning("ANALYZE %s after file job %s failed", table, job["id"], exc_info=True)

    async def _joined(self, tenant: str, parts: list[str]) -> AsyncIterator[bytes]:
        for part in parts:
            async for data in await self._files.read(tenant, part):
                yield data


class FileJobWorker:
    """Runs queued file jobs, and takes over those whose runner died (stale heartbeat)."""

    def __init__(self, jobs: FileJobs, stale_after: timedelta) -> None:
        self._jobs = jobs
        self._stale_after = stale_after

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                job_id = await self._jobs.claim(self._stale_after)
                if job_id is not None:
                    await self._jobs.run(job_id)
                    continue
            except Exception:
                log.warning("file job worker: job failed", exc_info=True)
            await sleep_unless_stopped(stop, 1.0)


def _part(base: str, number: int) -> str:
    return f"{base}.parts/{number:010d}"


def _identity(payload: Any, line_no: int) -> str:
    record_id = payload.get("id") if isinstance(payload, dict) else None
    return record_id if isinstance(record_id, str) and record_id else str(line_no)


def _one_line(message: str) -> str:
    return message.replace("\n", " ").replace("\r", " ")
