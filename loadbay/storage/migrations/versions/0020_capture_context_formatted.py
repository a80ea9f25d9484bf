"""SQLite's capture triggers take the job and the write's time as JSON from the context row.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28

`capture_context` gets `job_json` and `at_json`: the job's public id and the write's time
as an event's JSON has them, formatted once per write by the writer. SQLite's row triggers
are made anew to read them instead of formatting the same values for every event
(json_quote of the job, replace() of each timestamp that is the write's own), and to print
NOT NULL integers with %d: the same text, about 2% fewer instructions for a 1,000-entity
upsert with its triggers (callgrind), where a context row lacking the two values (a writer
of 0019) is still formatted per event. PostgreSQL keeps its context in transaction-local
settings; the columns are added there too, so that both databases have the schema
`storage/tables.py` declares.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("capture_context", sa.Column("job_json", sa.Text(), nullable=True))
    op.add_column("capture_context", sa.Column("at_json", sa.String(40), nullable=True))
    _recreate_sqlite_triggers(formatted=True)


def downgrade() -> None:
    _recreate_sqlite_triggers(formatted=False)
    op.drop_column("capture_context", "at_json")
    op.drop_column("capture_context", "job_json")


def _recreate_sqlite_triggers(*, formatted: bool) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in event_capture.recreated(
            dialect, OutboxLayout.STATEMENT_ROWS, formatted=formatted
        ):
            op.execute(statement)
