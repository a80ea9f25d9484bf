"""The unique keys of instances' hrid and matchKey become unique indexes, partial on PostgreSQL.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27

Writing instances reads the stored versions of a chunk's ids by (tenant, instance id). On a
table never analysed (a first load), PostgreSQL estimated one row for every index leading
with the tenant and chose, as often as not, the matchKey key with the tenant alone as its
condition: each of the chunk's 2,000 ids then read every row of the tenant, those that
concurrent chunks were writing included, 2-9 s a statement; 2 of 14 first loads of 100,000
instances ran at 18-20k records/s instead of 50-55k.

The same keys, (tenant, hrid) and (tenant, matchKey), now hold only for rows whose value is
not null (every hrid; a null matchKey was never unique anyway). A planner uses a partial
index only for a query whose conditions imply its predicate: lookups by hrid or matchKey do
(any comparison implies not null), the read by id cannot. Leading with the value instead
would have made the range of hrids a chunk was assigned a scan across every tenant (their
counters share the prefix): 0.4 -> 7.9 ms with 50 tenants.

SQLite never read by id through them, and its planner took a partial index for no lookup by
hrid (a chunk's range of hrids read every row of the tenant: the first load of 1,000,000
lines fell from 28k to 15k lines/s): there they are whole unique indexes, as the keys were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout
from loadbay.storage.table_rebuilds import altering

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_VALUES = ("hrid", "match_key")


def upgrade() -> None:
    with _rebuilding_on_sqlite() as table:
        for value in _VALUES:
            table.drop_constraint(_name(value), type_="unique")
    for value in _VALUES:
        where = sa.text(f"{value} IS NOT NULL")
        op.create_index(
            _name(value),
            "instances",
            ["tenant_id", value],
            unique=True,
            postgresql_where=where,
        )


def downgrade() -> None:
    for value in _VALUES:
        op.drop_index(_name(value), table_name="instances")
    with _rebuilding_on_sqlite() as table:
        for value in _VALUES:
            table.create_unique_constraint(_name(value), ["tenant_id", value])


@contextmanager
def _rebuilding_on_sqlite() -> Iterator[Any]:
    """The instances table, to alter: SQLite rebuilds it, and its triggers go with it."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for statement in event_capture.sqlite_drop_ddl():
            op.execute(statement)
    with altering("instances") as table:
        yield table
    if sqlite:
        for statement in event_capture.sqlite_ddl(OutboxLayout.STATEMENT_ROWS):
            op.execute(statement)


def _name(value: str) -> str:
    return f"uq_instances_tenant_id_{value}"
