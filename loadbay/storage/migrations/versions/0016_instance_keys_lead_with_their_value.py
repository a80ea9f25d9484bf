"""The unique keys of instances' hrid and matchKey lead with their value, then the tenant.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27

Writing instances reads the stored versions of a chunk's ids by (tenant, instance id). On a
table never analysed (a first load), PostgreSQL estimated one row for every index leading
with the tenant and chose, as often as not, the matchKey key with the tenant alone as its
condition: each of the chunk's 2,000 ids then read every row of the tenant, those that
concurrent chunks were writing included, 2-9 s a statement; 6 of 14 first loads of 100,000
instances ran at 12-25k records/s instead of 50-55k. With (hrid, tenant) and (matchKey,
tenant), only the id's key leads with the tenant. Lookups by hrid or matchKey name the value
and the tenant both; an hrid range is read across tenants, tenant checked in the index.
"""

from __future__ import annotations

from collections.abc import Callable

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
    _reorder(lambda value: ("tenant_id", value), lambda value: (value, "tenant_id"))


def downgrade() -> None:
    _reorder(lambda value: (value, "tenant_id"), lambda value: ("tenant_id", value))


def _reorder(old: Callable[[str], tuple[str, str]], new: Callable[[str], tuple[str, str]]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # SQLite rebuilds the table to change a constraint: its triggers go with it.
        for statement in event_capture.sqlite_drop_ddl():
            op.execute(statement)
    with altering("instances") as table:
        for value in _VALUES:
            table.drop_constraint(_name(old(value)), type_="unique")
            table.create_unique_constraint(_name(new(value)), list(new(value)))
    if sqlite:
        for statement in event_capture.sqlite_ddl(OutboxLayout.STATEMENT_ROWS):
            op.execute(statement)


def _name(columns: tuple[str, str]) -> str:
    return f"uq_instances_{'_'.join(columns)}"
