"""The relay's work list becomes a table of pending event ids: publishing deletes an id there
instead of rewriting the event's row, which stays as written.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26

`published_at` and the partial index over it go: an event is pending while its id is listed.
Events written before keep their state: those without `published_at` are listed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout
from loadbay.storage.table_rebuilds import altering

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UNPUBLISHED = "published_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "outbox_pending",
        sa.Column("id", BIG_ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_pending"),
    )
    op.execute(f"INSERT INTO outbox_pending (id) SELECT id FROM outbox WHERE {_UNPUBLISHED}")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    _drop_sqlite_capture()
    with altering("outbox") as table:
        table.drop_column("published_at")
    _capture(OutboxLayout.LISTED_EVENT_ROWS)


def downgrade() -> None:
    _drop_sqlite_capture()
    with altering("outbox") as table:
        table.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    # When each was published is not known any more: the time of the downgrade stands for it.
    op.execute(
        "UPDATE outbox SET published_at = CURRENT_TIMESTAMP "
        "WHERE id NOT IN (SELECT id FROM outbox_pending)"
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        postgresql_where=sa.text(_UNPUBLISHED),
        sqlite_where=sa.text(_UNPUBLISHED),
    )
    op.drop_table("outbox_pending")
    _capture(OutboxLayout.EVENT_ROWS)


def _drop_sqlite_capture() -> None:
    """SQLite rebuilds the outbox to change it: its triggers may not name it meanwhile."""
    if op.get_bind().dialect.name == "sqlite":
        for statement in event_capture.sqlite_drop_ddl():
            op.execute(statement)


def _capture(layout: OutboxLayout) -> None:
    for statement in event_capture.recreated(op.get_bind().dialect.name, layout):
        op.execute(statement)
