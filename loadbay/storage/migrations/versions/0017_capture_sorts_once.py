"""PostgreSQL's capture triggers sort a statement's rows once, not once per aggregate.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27

The trigger functions are made anew from `storage/event_capture` (CREATE OR REPLACE; the
triggers stay). They write the same outbox rows: only the plan that builds them changes. A
downgrade leaves them, for the same reason. SQLite's row triggers do not aggregate.
"""

from __future__ import annotations

from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in event_capture.postgres_functions(OutboxLayout.STATEMENT_ROWS):
            op.execute(statement)


def downgrade() -> None:
    """Nothing to undo: the functions write what 0016's wrote."""
