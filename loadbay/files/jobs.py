"""File jobs' lifecycle: a records file upserted chunk by chunk, resumable from the chunks
it committed.

Each chunk of lines (files.chunks) is one transaction: its records, its job counters, its
outbox events, its error parts (files.error_parts) and its listing as committed go together.
Several chunks are written at once, on connections of their own; those that share a record
commit in file order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loadbay import metrics
from loadbay.config import Settings
from loadbay.domain_events.outbox import EventContext
from loadbay.files.chunk_writers import ChunkWriters
from loadbay.files.chunks import Chunk, ParsedChunk, count_lines, parse_chunk, read_chunks
from loadbay.files.error_parts import ErrorFiles, ErrorParts, error_files
from loadbay.files.store import FileStore
from loadbay.ingest.engine import write_prepared
from loadbay.ingest.ids import HexIds
from loadbay.ingest.instances import OptimisticLocking, instances_collection
from loadbay.ingest.job_lifecycle import JobLifecycle
from loadbay.outcomes import JobStatus, file_progress
from loadbay.runtime import BULK_WORK
from loadbay.storage import file_jobs as store
from loadbay.storage.bulk import StoredKeysMet
from loadbay.storage.database import Database, lost_a_race
from loadbay.storage.rows import from_row
from loadbay.storage.types import utcnow

log = logging.getLogger("loadbay.files")

KIND = "instances_bulk"
# A file this large changes the table enough to refresh its planner statistics.
ANALYZE_AFTER_LINES = 10_000
# How long a stop waits for the chunks being written to commit before cutting them.
STOP_GRACE_SECONDS = 20.0


class LostClaim(Exception):
    """Another node took the job over (this one looked dead): stop without writing."""


@dataclass
class FileJob:
    """One records file's upsert: where it stands, and what it has counted so far."""

    id: int
    tenant_id: str
    status: JobStatus
    records_file: str
    publish_events: bool
    chunk_lines: int
    lines_done: int
    # None until the file's lines are counted, at the start of its first run.
    lines_total: int | None
    succeeded_count: int
    failed_count: int
    errors_count: int
    error: str | None
    created_at: datetime
    completed_at: datetime | None

    @property
    def error_files(self) -> ErrorFiles:
        return error_files(self.records_file)

    @property
    def progress(self) -> int:
        return file_progress(self.status, self.lines_done, self.lines_total)


def _file_job(row: Mapping[str, Any]) -> FileJob:
    return from_row(FileJob, row, status=JobStatus(row["status"]))


class FileJobs:
    def __init__(self, db: Database, files: FileStore, settings: Settings) -> None:
        self._db = db
        self._files = files
        self._settings = settings
        self._collection = instances_collection(
            settings.hrid_prefix, OptimisticLocking(settings.instance_optimistic_locking)
        )
        self._error_parts = ErrorParts(files)
        self.ids = HexIds("job_")
        self._jobs = JobLifecycle(KIND, self.ids, "job")
        self.node = f"{socket.gethostname()}:{os.getpid()}"

    async def create(
        self, tenant_id: str, records_file: str, publish_events: bool, *, run_here: bool
    ) -> int:
        """A job row; claimed by this node when it runs the job inline (synchronously)."""
        await self._files.size(tenant_id, records_file)
        async with self._db.write() as unit:
            job = await self._jobs.open(unit, tenant_id, self._collection.name)
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
                    "heartbeat_at": job.created_at if run_here else None,
                    "error": None,
                },
            )
        return job.id

    async def view(self, job_id: int, tenant_id: str | None = None) -> FileJob:
        async with self._db.read() as conn:
            row = await store.find_file_job(conn, job_id, tenant_id)
        if row is None:
            raise self._jobs.not_found(job_id)
        return _file_job(row)

    async def run(self, job_id: int) -> None:
        """Process the job's chunks not committed yet, to the end. The caller holds the claim."""
        job = await self.view(job_id)
        if job.status is not JobStatus.PROCESSING:
            return
        tenant, name = job.tenant_id, job.records_file
        try:
            if job.lines_total is None:
                job.lines_total = await count_lines(self._files, tenant, name)
                async with self._db.write() as unit:
                    await store.set_total(unit.conn, job_id, job.lines_total, utcnow())
            async with self._db.read() as conn:
                committed = await store.committed_chunks(conn, job_id)
            chunks = read_chunks(self._files, tenant, name, job.chunk_lines, committed)
            parts = await self._error_parts.stored(tenant, name)
            with BULK_WORK.held():
                await self._pipeline(job, chunks, parts)
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
                await self._jobs.fail(unit.conn, job_id)
                await store.close(unit.conn, job_id, str(error))
            raise

    async def counts(self) -> dict[str, int]:
        """File jobs by status, every tenant's: `processing` is the queue's depth."""
        async with self._db.read() as conn:
            return await store.count_by_status(conn)

    async def claim(self, stale_after: timedelta) -> int | None:
        now = utcnow()
        async with self._db.write() as unit:
            return await store.claim_abandoned(unit.conn, self.node, now - stale_after, now)

    async def _pipeline(self, job: FileJob, chunks: AsyncIterator[Chunk], parts: set[str]) -> None:
        """Parse and validate the next chunk while earlier ones are written and committed.

        Chunks that share nothing commit in any order (ChunkWriters): a record's lines still
        take effect in file order, and a link may name a record of an earlier chunk.
        """
        writers = ChunkWriters(self._settings.file_chunk_writers, STOP_GRACE_SECONDS)
        try:
            async for chunk in chunks:
                BULK_WORK.sweep_if_due()
                parsed = await parse_chunk(self._collection, job.tenant_id, chunk)
                touched = self._collection.touched(p.row for p in parsed.prepared.ordered)
                await writers.start(touched, functools.partial(self._commit, job, parsed, parts))
            await writers.finish()
        except BaseException as error:
            failures = await writers.abandon()
            for failure in failures:
                if failure is not error:  # that one, `run` reports
                    log.warning("file job %s: a chunk failed: %r", self.ids.format(job.id), failure)
            # Another node owns the job now (it found this one silent): do not fail it. A stop
            # stays a stop, so that `run` hands the job back.
            lost = any(isinstance(failure, LostClaim) for failure in failures)
            if lost and not isinstance(error, asyncio.CancelledError):
                raise LostClaim from error
            raise

    async def _commit(self, job: FileJob, parsed: ParsedChunk, parts: set[str]) -> None:
        """Write a chunk, its records taken for new where the writer finds it likely; again,
        parsed afresh and after reading what is stored, if that guess was wrong
        (`StoredKeysMet`: a re-load's first chunks); and once more if the database rolled
        it back to let a concurrent chunk through (`lost_a_race`: a deadlock over stored
        title links, which chunks written at once may share, or an hrid one of them took
        meanwhile). A wrong guess does not use up that one retry."""
        guess_new, raced = True, False
        while True:
            try:
                await self._write_chunk(job, parsed, parts, guess_new=guess_new)
                return
            except StoredKeysMet:
                log.debug(
                    "file job %s: chunk %d met stored records; writing it again after a read",
                    self.ids.format(job.id),
                    parsed.chunk.number,
                )
            except Exception as error:
                if raced or not lost_a_race(error):
                    raise
                raced = True
                log.warning(
                    "file job %s: chunk %d was rolled back (%s); writing it again",
                    self.ids.format(job.id),
                    parsed.chunk.number,
                    error,
                )
            guess_new = False
            # The writers hold the first `parsed` until this returns: its records go before
            # the chunk is parsed again (a re-load's first chunks held two copies each).
            parsed.prepared.ordered.clear()
            parsed = await parse_chunk(self._collection, job.tenant_id, parsed.chunk)

    async def _write_chunk(
        self, job: FileJob, parsed: ParsedChunk, parts: set[str], *, guess_new: bool
    ) -> None:
        tenant, name, chunk, failed = (
            job.tenant_id,
            job.records_file,
            parsed.chunk,
            parsed.failed,
        )
        events = EventContext(self.ids.format(job.id)) if job.publish_events else None
        prepared = parsed.prepared
        async with self._db.write() as unit:
            failures = await write_prepared(
                unit,
                self._collection,
                tenant,
                prepared,
                # The whole chunk in one statement: its lines commit together.
                chunk_size=len(prepared.ordered) or 1,
                events=events,
                count_successes=True,
                guess_new=guess_new,
            )
            for result in failures:
                failed[result.index] = (
                    _identity(result.payload, result.index),
                    result.error or "",
                    result.message or "",
                )
            # Listed and claimed before its error parts are written: a run that has lost the
            # job, or whose chunk another run committed, stops here without touching them.
            if not await store.advance(
                unit.conn,
                job.id,
                self.node,
                chunk=chunk.number,
                lines=len(chunk.lines),
                errors=len(failed),
                now=utcnow(),
            ):
                raise LostClaim
            raw_by_line = {line_no: chunk.line(line_no) for line_no in failed}
            await self._error_parts.write(tenant, name, chunk.number, failed, raw_by_line, parts)
            succeeded = prepared.succeeded.total()
            await self._jobs.count(unit.conn, job.id, succeeded=succeeded, failed=len(failed))
        counts = {**prepared.succeeded, "failed": len(failed)}
        metrics.count_outcomes(self._collection.name, tenant, counts)
        metrics.FILE_LINES.inc(len(chunk.lines))

    async def _finish(self, job: FileJob) -> None:
        tenant = job.tenant_id
        parts = await self._error_parts.assemble(tenant, job.records_file)
        async with self._db.write() as unit:
            await self._jobs.finish_counted(unit.conn, tenant, job.id)
            await store.close(unit.conn, job.id)
        # The parts go once the job is marked done: a crash before that rebuilds the files.
        await self._error_parts.remove(tenant, parts)
        if (job.lines_total or 0) >= ANALYZE_AFTER_LINES:
            table = self._collection.target.table.name
            try:
                await self._db.analyze(table)
            except Exception:
                # The job is done and committed; stale statistics only cost speed.
                log.warning("ANALYZE %s after file job %s failed", table, job.id, exc_info=True)


def _identity(payload: Any, line_no: int) -> str:
    record_id = payload.get("id") if isinstance(payload, dict) else None
    return record_id if isinstance(record_id, str) and record_id else str(line_no)
