"""What the dashboard pages show, shaped from storage rows: no SQL, no HTML."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loadbay.auth.keys import ApiKeys
from loadbay.ingest.ids import HexIds, PublicIds
from loadbay.outcomes import file_progress
from loadbay.storage import dashboard as store
from loadbay.storage.database import Database

# Job kinds as the dashboard names them, and how each API spells its ids.
KINDS = {
    "batch_insert": ("batch inserts", PublicIds("batch-")),
    "operator": ("operator batches", HexIds("job_")),
    "instances_bulk": ("instance files", HexIds("job_")),
}
STATUSES = ("processing", "completed", "failed")
CHART_DAYS = 14
Failures = list[Mapping[str, Any]]
FAILURES_SHOWN = 200


@dataclass(frozen=True)
class JobRow:
    id: str
    number: int
    kind: str
    collection: str
    status: str
    records: int
    succeeded: int
    failed: int
    progress: int
    created_at: str
    completed_at: str
    records_file: str | None


@dataclass(frozen=True)
class ChartBar:
    day: str
    collection: str
    records: int
    x: int
    height: int
    y: int


class Dashboard:
    def __init__(
        self,
        db: Database,
        api_keys: ApiKeys,
        record_errors: Mapping[str, Callable[[str], str]],
    ) -> None:
        self._db = db
        self._keys = api_keys
        # Per job kind, how the API that took the job spells a failed record's error.
        self._record_errors = record_errors

    async def jobs(self, tenant_id: str, kind: str | None, status: str | None) -> list[JobRow]:
        kinds = [kind] if kind in KINDS else list(KINDS)
        async with self._db.read() as conn:
            rows = await store.recent_jobs(
                conn,
                tenant_id,
                kinds=kinds,
                status=status if status in STATUSES else None,
                limit=100,
            )
        return [_row(r) for r in rows]

    async def job(
        self, tenant_id: str, public_id: str
    ) -> tuple[JobRow, list[Mapping[str, Any]]] | None:
        number = _parse(public_id)
        if number is None:
            return None
        async with self._db.read() as conn:
            row = await store.one_job(conn, tenant_id, number)
            if row is None:
                return None
            failures = await store.failed_results(conn, number, FAILURES_SHOWN)
        spelled = self._record_errors.get(row["kind"])
        if spelled is not None:
            failures = [{**f, "error": spelled(f["error"] or "")} for f in failures]
        return _row(row), failures

    async def chart(self, tenant_id: str) -> tuple[list[ChartBar], list[str], list[str]]:
        """Records that went in per day and collection, the last CHART_DAYS days, as bars."""
        since = datetime.now(UTC) - timedelta(days=CHART_DAYS - 1)
        async with self._db.read() as conn:
            totals = await store.ingested_by_day(conn, tenant_id, since.replace(hour=0, minute=0))
        collections = sorted({c for _, c, _ in totals})
        days = [(since + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(CHART_DAYS)]
        highest = max((n for _, _, n in totals), default=0) or 1
        width = max(len(collections), 1)
        bars = []
        for day, collection, records in totals:
            if day not in days:
                continue
            height = max(1, round(160 * records / highest)) if records else 0
            x = days.index(day) * 44 + collections.index(collection) * (40 // width)
            bars.append(ChartBar(day, collection, records, x, height, 170 - height))
        return bars, collections, [day[5:] for day in days]

    async def keys(self, tenant_id: str) -> list[Any]:
        return [k for k in await self._keys.list(tenant_id) if k.revoked_at is None]


def _parse(public_id: str) -> int | None:
    for _, ids in KINDS.values():
        number = ids.parse(public_id)
        if number is not None:
            return number
    return None


def _row(row: Mapping[str, Any]) -> JobRow:
    label, ids = KINDS[row["kind"]]
    total = row["lines_total"]
    return JobRow(
        id=ids.format(row["id"]),
        number=row["id"],
        kind=label,
        collection=row["collection"],
        status=row["status"],
        records=row["record_count"] or (total or 0),
        succeeded=row["succeeded_count"],
        failed=row["failed_count"],
        progress=file_progress(row["status"], row["lines_done"] or 0, total),
        created_at=_when(row["created_at"]),
        completed_at=_when(row["completed_at"]),
        records_file=row["records_file"],
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""
