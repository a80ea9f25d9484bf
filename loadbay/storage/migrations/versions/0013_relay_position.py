"""The relay keeps how far it has published instead of a list of pending event ids: capture
writes nothing per event for it, and publishing a batch rewrites one row.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26

The position starts just below the first id still listed, or at the last event when none
is: an event published out of order above the first pending one (a list could have holes)
goes out once more, which "at least once" allows and consumers dedupe by `eventId`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "relay_position",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("published_through", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_relay_position"),
        sa.CheckConstraint("id = 1", name="ck_relay_position_one_row"),
    )
    # Ids naming no event (deleted by hand) are passed over: they would start it too low.
    op.execute(
        "INSERT INTO relay_position (id, published_through) SELECT 1, coalesce("
        "(SELECT min(p.id) - 1 FROM outbox_pending p JOIN outbox o ON o.id = p.id), "
        "(SELECT max(id) FROM outbox), 0)"
    )
    _capture(OutboxLayout.EVENT_ROWS)
    op.drop_table("outbox_pending")


def downgrade() -> None:
    op.create_table(
        "outbox_pending",
        sa.Column("id", BIG_ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_pending"),
    )
    op.execute(
        "INSERT INTO outbox_pending (id) SELECT id FROM outbox "
        "WHERE id > coalesce((SELECT published_through FROM relay_position), 0)"
    )
    _capture(OutboxLayout.LISTED_EVENT_ROWS)
    op.drop_table("relay_position")


def _capture(layout: OutboxLayout) -> None:
    for statement in event_capture.recreated(op.get_bind().dialect.name, layout):
        op.execute(statement)
