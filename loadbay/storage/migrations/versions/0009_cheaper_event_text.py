"""Cheaper event text: SQLite capture triggers build each event with one printf() instead of
json_object() over json(), which re-parsed every stored document; PostgreSQL formats a
timestamp with one to_char() instead of two and an extract().

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in event_capture.recreated(op.get_bind().dialect.name, OutboxLayout.EVENT_ROWS):
        op.execute(statement)


def downgrade() -> None:
    # The triggers and functions before it produced the same events, only slower.
    pass
