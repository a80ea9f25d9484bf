"""The ceiling's rows: each scenario's own rows, as Loadbay stores them, in Loadbay's own table.

The ceiling is what the database takes for the same rows with no server in front. Each kind
of row Loadbay writes in a run (entities, events, activities, instances) gets one: the
ceiling's database has Loadbay's schema as its migrations make it (keys, indexes, the
upserted tables' fillfactor), without the triggers that capture events (bench/baselines.py
drops them); its rows carry the values Loadbay stores for the records the scenario sends,
and the database writes them alone: PostgreSQL by COPY, SQLite by multi-row INSERTs in one
transaction. The update pass writes every row again through the table's key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Table

from bench import data
from loadbay.storage import tables

Row = tuple[Any, ...]


@dataclass(frozen=True)
class CeilingRows:
    """One kind of row: its table, the columns written, and its insert and update passes."""

    rows: str  # the kind of row, as the Loadbay lines that write it name it
    table: Table
    columns: tuple[str, ...]
    key: tuple[str, ...]  # the key the update pass meets every row on
    inserted: list[Row]
    updated: list[Row] | None  # None: the scenario only inserts this kind

    @property
    def on_conflict(self) -> str:
        """The update pass's clause (PostgreSQL's and SQLite's alike): it sets what Loadbay's
        upsert sets, its version as a value."""
        kept = {*self.key, "created_at", "entity_type"}  # an entity keeps its type
        sets = ", ".join(f"{c} = excluded.{c}" for c in self.columns if c not in kept)
        return f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {sets}"


def ceiling_rows(count: int) -> list[CeilingRows]:
    """The four kinds, `count` rows each; entities first (events name them by row id)."""
    created = datetime.now(UTC)
    changed = created + timedelta(seconds=1)
    return [
        _entities(count, created, changed),
        _events(count, created),
        _activities(count, created),
        _instances(count, created, changed),
    ]


def _entities(count: int, created: datetime, changed: datetime) -> CeilingRows:
    def row(n: int, updated: bool) -> Row:
        value = orjson.dumps(data.entity_data(n, updated)).decode()
        version, at = (2, changed) if updated else (1, created)
        return (data.TENANT, f"p{n}", "player", value, version, created, at)

    columns = ("tenant_id", "external_id", "entity_type", "data", "version")
    return CeilingRows(
        "entities",
        tables.entities,
        (*columns, "created_at", "updated_at"),
        ("tenant_id", "external_id"),
        [row(n, False) for n in range(count)],
        [row(n, True) for n in range(count)],
    )


def _events(count: int, created: datetime) -> CeilingRows:
    def row(n: int) -> Row:
        record = data.event(n, n % count)
        value = orjson.dumps(record["data"]).decode()
        # Entity rows are numbered from 1 in the order the entity ceiling wrote them.
        entity_id, position = n % count + 1, n % 5000
        return (
            data.TENANT,
            record["eventId"],
            entity_id,
            record["externalId"],
            record["eventType"],
            value,
            created,
            position,
        )

    return CeilingRows(
        "events",
        tables.events,
        (
            "tenant_id",
            "event_id",
            "entity_id",
            "external_id",
            "event_type",
            "data",
            "created_at",
            "position",
        ),
        ("tenant_id", "event_id"),
        [row(n) for n in range(count)],
        None,
    )


def _activities(count: int, created: datetime) -> CeilingRows:
    def row(n: int) -> Row:
        record = data.activity(n)
        day = date.fromisoformat(record["activity_date"])
        # Loadbay keeps the batch and the position each row came from (origin_*).
        return (
            data.TENANT,
            record["coordinator_id"],
            record["mentor_id"],
            record["activity_type"],
            day,
            record["duration_minutes"],
            1,
            created,
            created,
            n // 1000 + 1,
            n % 1000,
        )

    return CeilingRows(
        "activities",
        tables.activities,
        (
            "tenant_id",
            "coordinator_id",
            "mentor_id",
            "activity_type",
            "activity_date",
            "duration_minutes",
            "version",
            "created_at",
            "updated_at",
            tables.ORIGIN_JOB,
            tables.ORIGIN_INDEX,
        ),
        ("tenant_id", "mentor_id", "activity_type", "activity_date"),
        [row(n) for n in range(count)],
        None,
    )


def _instances(count: int, created: datetime, changed: datetime) -> CeilingRows:
    def row(n: int, updated: bool) -> Row:
        # The stored document: the line's JSON with the hrid Loadbay gives it.
        record, hrid = orjson.loads(data.instance_line(n)), f"in{n + 1:011d}"
        document = orjson.dumps({**record, "hrid": hrid}).decode()
        version, at = (2, changed) if updated else (1, created)
        return (data.TENANT, record["id"], hrid, document, version, created, at)

    return CeilingRows(
        "instances",
        tables.instances,
        ("tenant_id", "instance_id", "hrid", "document", "version", "created_at", "updated_at"),
        ("tenant_id", "instance_id"),
        [row(n, False) for n in range(count)],
        [row(n, True) for n in range(count)],
    )


def sqlite_values(row: Sequence[Any]) -> list[Any]:
    """A row as Loadbay's SQLite tables hold it: timestamps as naive UTC text, dates ISO."""
    return [_sqlite_value(value) for value in row]


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return str(value.astimezone(UTC).replace(tzinfo=None))
    if isinstance(value, date):
        return value.isoformat()
    return value
