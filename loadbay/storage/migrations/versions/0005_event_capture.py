"""Events captured by database triggers; HOT room on upserted tables; activities' origin;
no per-row tenant foreign key on the tables written in bulk (see tables.BULK_TENANT).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

The trigger SQL is generated from the captured tables (`loadbay.storage.event_capture`): a
later migration that changes a captured table or the event value drops and re-creates it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout
from loadbay.storage.table_rebuilds import altering

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Upserts rewrite rows: free space on each page lets PostgreSQL update them in place (HOT)
# instead of writing a new tuple and a new entry in every index. Measured: updates 38k -> 63k/s.
UPSERTED_TABLES = ("activities", "entities", "states", "instances")
BULK_TABLES = ("activities", "entities", "events", "states", "instances", "outbox")


def upgrade() -> None:
    # Which batch and index created each activity: results of created records are read here.
    op.add_column("activities", sa.Column("origin_job_id", BIG_ID, nullable=True))
    op.add_column("activities", sa.Column("origin_index", sa.Integer(), nullable=True))
    op.create_index("ix_activities_origin_job_id", "activities", ["origin_job_id"])
    # Before the triggers: SQLite drops a constraint by rebuilding the table, triggers and all.
    for table in BULK_TABLES:
        with altering(table) as batch:
            batch.drop_constraint(_tenant_key(table), type_="foreignkey")
    op.create_table(
        "capture_context",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_ref", sa.String(255), nullable=True),
        sa.Column("event_ts", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id_prefix", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_capture_context"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in UPSERTED_TABLES:
            op.execute(f'ALTER TABLE "{table}" SET (fillfactor = 50)')
        statements = event_capture.postgres_ddl(OutboxLayout.EVENT_ROWS)
    else:
        statements = event_capture.sqlite_ddl(OutboxLayout.EVENT_ROWS)
    _run(statements)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        statements = event_capture.postgres_drop_ddl()
        for table in UPSERTED_TABLES:
            op.execute(f'ALTER TABLE "{table}" RESET (fillfactor)')
    else:
        statements = event_capture.sqlite_drop_ddl()
    _run(statements)
    for table in BULK_TABLES:
        with altering(table) as batch:
            batch.create_foreign_key(_tenant_key(table), "tenants", ["tenant_id"], ["id"])
    op.drop_table("capture_context")
    op.drop_index("ix_activities_origin_job_id", table_name="activities")
    with op.batch_alter_table("activities") as table:
        table.drop_column("origin_index")
        table.drop_column("origin_job_id")


def _tenant_key(table: str) -> str:
    return f"fk_{table}_tenant_id_tenants"


def _run(statements: Iterable[str]) -> None:
    # As the driver's own SQL: `text()` would read the `:MI` of a time format as a parameter.
    connection = op.get_bind()
    for statement in statements:
        connection.exec_driver_sql(statement)
