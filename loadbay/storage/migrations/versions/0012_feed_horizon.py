"""PostgreSQL: every insert into the outbox first takes a shared advisory lock keyed by the
ids it is about to take, so that the feed never passes an event still to commit.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26

See loadbay/storage/feed_horizon.py. Nothing changes on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loadbay.storage import feed_horizon

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence('outbox', 'id')")).scalar_one()
    for statement in feed_horizon.postgres_ddl(sequence):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in feed_horizon.postgres_drop_ddl():
            op.execute(statement)
