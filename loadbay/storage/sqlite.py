"""SQLite fast path: multi-row `INSERT … VALUES … ON CONFLICT … RETURNING` on aiosqlite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, Table

from loadbay.storage._sql import (
    align,
    conflict_clause,
    encode_rows,
    names,
    returned_columns,
)
from loadbay.storage.bulk import BulkTarget, OnConflict, Row
from loadbay.storage.event_capture import sqlite_event_id_prefix
from loadbay.storage.types import UtcDateTime

# SQLite's bound-parameter ceiling is 32,766; 500-row statements measured fastest.
MAX_PARAMS = 32_000
MAX_ROWS_PER_STATEMENT = 500


def _encode_datetime(value: datetime | None) -> str | None:
    # The text form SQLAlchemy's SQLite DateTime writes and parses back.
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _encode_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


_ENCODERS = {UtcDateTime: _encode_datetime, Date: _encode_date}


class SqliteBulkWriter:
    def __init__(self, connection: Any) -> None:
        self._conn = connection

    async def write(
        self, target: BulkTarget, rows: Sequence[Row], on_conflict: OnConflict
    ) -> list[Row | None]:
        params = encode_rows(target.table, target.insert_columns, rows, _ENCODERS)
        step = max(1, min(MAX_ROWS_PER_STATEMENT, MAX_PARAMS // len(target.insert_columns)))
        returned: list[Sequence[Any]] = []
        for start in range(0, len(params), step):
            batch = params[start : start + step]
            cursor = await self._conn.execute(
                _upsert_sql(target, len(batch), on_conflict), [v for p in batch for v in p]
            )
            returned.extend(await cursor.fetchall())
            await cursor.close()
        return align(target, params, returned)

    async def insert(self, table: Table, columns: Sequence[str], rows: Sequence[Row]) -> None:
        placeholders = ", ".join("?" for _ in columns)
        await self._conn.executemany(
            f'INSERT INTO "{table.name}" ({names(columns)}) VALUES ({placeholders})',
            encode_rows(table, columns, rows, _ENCODERS),
        )

    async def capture_events(self, job_ref: str | None, at: datetime) -> None:
        await self._conn.execute(
            "INSERT OR REPLACE INTO capture_context "
            "(id, job_ref, event_ts, created_at, event_id_prefix) VALUES (1, ?, ?, ?, ?)",
            (job_ref, int(at.timestamp() * 1000), _encode_datetime(at), sqlite_event_id_prefix()),
        )

    async def stop_capturing(self) -> None:
        await self._conn.execute("DELETE FROM capture_context")


def _upsert_sql(target: BulkTarget, row_count: int, on_conflict: OnConflict) -> str:
    row = "(" + ", ".join("?" for _ in target.insert_columns) + ")"
    values = ", ".join(row for _ in range(row_count))
    return (
        f'INSERT INTO "{target.table.name}" ({names(target.insert_columns)}) VALUES {values} '
        f"{conflict_clause(target, on_conflict)} RETURNING {names(returned_columns(target))}"
    )
