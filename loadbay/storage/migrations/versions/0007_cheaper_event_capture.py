"""PostgreSQL capture functions draw one random event-id prefix per statement (UUIDv8, as on
SQLite) and format the write's own timestamp once per statement, not once per row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in event_capture.postgres_functions(OutboxLayout.EVENT_ROWS):
            op.execute(statement)


def downgrade() -> None:
    # The functions of 0005 produced the same events, only slower: nothing to restore.
    pass
