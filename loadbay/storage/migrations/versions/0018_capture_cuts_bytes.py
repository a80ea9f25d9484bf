"""PostgreSQL's capture of instances closes a document's JSON without counting its characters.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27

The trigger functions are made anew from `storage/event_capture` (CREATE OR REPLACE; the
triggers stay). An instance event's view is the stored document with `_version` added
before its closing brace, which is now cut off as a byte instead of by `left(text, -1)`:
the same outbox rows, for less of PostgreSQL's CPU. A downgrade leaves them, for the same
reason. SQLite's triggers are unchanged.
"""

from __future__ import annotations

from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in event_capture.postgres_functions(OutboxLayout.STATEMENT_ROWS):
            op.execute(statement)


def downgrade() -> None:
    """Nothing to undo: the functions write what 0017's wrote."""
