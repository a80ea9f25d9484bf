"""Batch jobs: run a batch through the engine and keep its record; inspect, retry, delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loadbay import metrics
from loadbay.domain_events.outbox import EventContext
from loadbay.errors import Conflict, UnprocessableInput
from loadbay.ingest.collection import Collection, ConflictMode
from loadbay.ingest.engine import (
    PreparedRecords,
    prepare_records,
    prepare_records_stepwise,
    write_prepared,
)
from loadbay.ingest.ids import IdCodec
from loadbay.ingest.job_lifecycle import JobLifecycle, JobPage
from loadbay.outcomes import Job, JobStatus, Outcome, RecordResult
from loadbay.storage import idempotency as idempotency_store
from loadbay.storage import jobs as job_store
from loadbay.storage.database import Database, WriteUnit
from loadbay.storage.types import utcnow


@dataclass(frozen=True)
class IdempotentRequest:
    """The Idempotency-Key a batch is written under (see auth.idempotency)."""

    tenant_id: str
    key: str
    # When the request claimed the key: the job is tied to that claim only.
    claimed_at: datetime
    # A request with this key died after committing this job: its answer is that job.
    committed_job: int | None = None


@dataclass(frozen=True)
class RetryReport:
    job: Job
    results: list[RecordResult]


class BatchJobs:
    """The batch jobs of one kind (one API surface): each batch written whole, its per-record
    results kept for reading and retries."""

    def __init__(
        self,
        db: Database,
        *,
        kind: str,
        ids: IdCodec,
        chunk_size: int,
        keep_successes: bool = True,
        results_from: Collection | None = None,
    ) -> None:
        self._db = db
        self._jobs = JobLifecycle(kind, ids, "batch")
        self.ids = ids
        self._chunk_size = chunk_size
        # Without it only failed records keep a result row (the response still has them all).
        self._keep_successes = keep_successes
        # A collection whose rows record their origin: created records' results are read there.
        self._results_from = results_from

    async def run(
        self,
        tenant_id: str,
        collection: Collection,
        records: Sequence[Any],
        idempotent: IdempotentRequest | None = None,
    ) -> Job:
        """Write a whole batch and its job record in one transaction. The job's results are
        every record's, or, for jobs that keep no result of a success, the failures' only.

        Under an Idempotency-Key the job is tied to the key in that transaction, so that a
        resend whose first answer was lost gets this job back instead of a second run.
        """
        if idempotent is not None and idempotent.committed_job is not None:
            return await self.get(tenant_id, idempotent.committed_job)
        now = utcnow()
        prepared = await prepare_records_stepwise(
            collection, tenant_id, list(enumerate(records)), mode=collection.on_conflict, now=now
        )
        # Where successes keep no result, they are only counted: no result is made for each.
        counting = not self._keep_successes
        async with self._db.write() as unit:
            job = await self._jobs.open(unit, tenant_id, collection.name, len(records), now=now)
            job.results = await self._write(
                unit, collection, tenant_id, job.id, prepared, count_successes=counting
            )
            await job_store.add_results(unit, job.id, self._kept(job.results))
            failed = sum(r.outcome is Outcome.FAILED for r in job.results)
            await self._jobs.finish(unit, job, failed=failed)
            # Last, so that the key's row is locked only for the commit.
            if idempotent is not None and not await idempotency_store.attach_job(
                unit.conn, idempotent.tenant_id, idempotent.key, idempotent.claimed_at, job.id
            ):
                raise Conflict(
                    "this request's Idempotency-Key was taken over by a resend while it waited; "
                    "nothing of it was stored",
                    code="idempotency_key_in_use",
                )
        metrics.count_records(collection.name, tenant_id, (r.outcome.value for r in job.results))
        metrics.count_outcomes(collection.name, tenant_id, prepared.succeeded)  # if counted
        metrics.BATCH_RECORDS.labels(collection.name).observe(len(records))
        return job

    async def retry(
        self,
        tenant_id: str,
        collection: Collection,
        job_id: int,
        indices: Sequence[int],
        *,
        mode: ConflictMode,
    ) -> RetryReport:
        """Write failed records again from their stored payloads, under `mode`."""
        wanted = sorted(set(indices))
        async with self._db.write() as unit:
            job = await self._jobs.find(unit.conn, tenant_id, job_id, for_update=True)
            # An index past the batch cannot exist: never send it to the database.
            in_batch = [i for i in wanted if i < job.record_count]
            stored = {r.index: r for r in await self._results(unit.conn, job.id, in_batch)}
            _check_retryable(job, wanted, stored)
            retried = [(i, stored[i].payload) for i in wanted]
            prepared = prepare_records(collection, tenant_id, retried, mode=mode, now=utcnow())
            results = await self._write(unit, collection, tenant_id, job.id, prepared)
            await job_store.replace_results(unit, job.id, results, keep=self._kept(results))
            await self._jobs.recount(unit, job, recovered=sum(r.succeeded for r in results))
        metrics.count_records(collection.name, tenant_id, (r.outcome.value for r in results))
        return RetryReport(job=job, results=results)

    def check(
        self, tenant_id: str, collection: Collection, records: Sequence[Any]
    ) -> list[RecordResult]:
        """What a batch would meet without writing anything: each record validated, and the
        batch's own duplicates settled as a write would. Conflicts with stored records, and
        references to them, are only known when written. Returns the failures, in order."""
        prepared = prepare_records(
            collection,
            tenant_id,
            list(enumerate(records)),
            mode=collection.on_conflict,
            now=utcnow(),
        )
        return sorted(
            (r for r in prepared.results.values() if not r.succeeded), key=lambda r: r.index
        )

    async def get(self, tenant_id: str, job_id: int) -> Job:
        async with self._db.read() as conn:
            job = await self._jobs.find(conn, tenant_id, job_id)
            job.results = await self._results(conn, job.id)
        return job

    async def list(
        self, tenant_id: str, *, status: JobStatus | None, page: int, limit: int
    ) -> JobPage:
        async with self._db.read() as conn:
            return await self._jobs.list(conn, tenant_id, status=status, page=page, limit=limit)

    async def delete(self, tenant_id: str, job_id: int) -> None:
        async with self._db.write() as unit:
            await self._jobs.delete(unit.conn, tenant_id, job_id)

    def _kept(self, results: list[RecordResult]) -> list[RecordResult]:
        """The results that need a row: not those `_results` can read from the records."""
        if not self._keep_successes:
            return [r for r in results if not r.succeeded]
        if self._results_from is not None:
            return [r for r in results if r.outcome is not Outcome.CREATED]
        return results

    async def _results(
        self, conn: Any, job_id: int, indices: Sequence[int] | None = None
    ) -> list[RecordResult]:
        """The job's stored results, with those of the records it created read from them."""
        results = {r.index: r for r in await job_store.find_results(conn, job_id, indices)}
        origin = self._results_from
        if origin is not None:
            table = origin.target.table
            for index, row_id in await job_store.find_created(conn, table, job_id, indices):
                created = RecordResult(index, Outcome.CREATED, origin.ids.format(row_id))
                results.setdefault(index, created)
        return [results[index] for index in sorted(results)]

    async def _write(
        self,
        unit: WriteUnit,
        collection: Collection,
        tenant_id: str,
        job_id: int,
        prepared: PreparedRecords,
        *,
        count_successes: bool = False,
    ) -> list[RecordResult]:
        """The records' results; with `count_successes`, the failures' only (see
        `write_prepared`)."""
        return await write_prepared(
            unit,
            collection,
            tenant_id,
            prepared,
            chunk_size=self._chunk_size,
            events=EventContext(job_ref=self.ids.format(job_id)),
            job_id=job_id,
            count_successes=count_successes,
        )


def _check_retryable(job: Job, wanted: list[int], stored: dict[int, RecordResult]) -> None:
    unknown = [i for i in wanted if i not in stored]
    if unknown:
        raise UnprocessableInput(
            f"retry_indices {unknown} do not exist: the batch has records 0 to "
            f"{job.record_count - 1}",
            code="unknown_record_index",
            details={"indices": unknown},
        )
    not_failed = [i for i in wanted if stored[i].succeeded]
    if not_failed:
        raise UnprocessableInput(
            f"retry_indices {not_failed} did not fail; only failed records can be retried",
            code="record_not_failed",
            details={"indices": not_failed},
        )
