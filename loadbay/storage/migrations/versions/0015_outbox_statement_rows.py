"""The outbox holds a row per write statement, its events in it, instead of a row per event.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27

PostgreSQL's capture triggers write one row for the events of every record a statement
changed: their keys and ids as JSON arrays, their values one a line. SQLite's triggers act
per row and go on writing one event a row, in the same columns. On PostgreSQL the three
columns are compressed with lz4 where the server has it (the default, pglz, cost more CPU
than it saved in WAL). Existing events become rows of one event, with their ids: cursors
and the relay's position still name them. The relay's position also counts the events of
the next row that went out, when the broker acknowledged a batch in part.

A downgrade gives each event its row again: with its row's id where every row holds one
event; otherwise numbered anew in the same order (the relay's position follows the last
event of its row; events of the next row it had published go out again), and feed cursors
handed out meanwhile no longer apply.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loadbay.storage import event_capture
from loadbay.storage.event_capture import OutboxLayout
from loadbay.storage.table_rebuilds import altering

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BATCH_COLUMNS = ("record_keys", "event_ids", "payloads")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _drop_sqlite_capture()
    with altering("outbox") as table:
        table.add_column(sa.Column("event_count", sa.Integer(), nullable=True))
        for name in _BATCH_COLUMNS:
            table.add_column(sa.Column(name, sa.Text(), nullable=True))
    one = "json_build_array({})::text" if postgres else "json_array({})"
    op.execute(
        f"UPDATE outbox SET event_count = 1, record_keys = {one.format('record_key')}, "
        f"event_ids = {one.format('event_id')}, payloads = payload"
    )
    with altering("outbox") as table:
        for name in ("event_count", *_BATCH_COLUMNS):
            table.alter_column(name, nullable=False)
        for name in ("record_key", "event_id", "payload"):
            table.drop_column(name)
    if postgres and _has_lz4():
        for name in _BATCH_COLUMNS:
            op.execute(f"ALTER TABLE outbox ALTER COLUMN {name} SET COMPRESSION lz4")
    op.add_column(
        "relay_position",
        sa.Column("published_rank", sa.Integer(), nullable=False, server_default="0"),
    )
    _capture(OutboxLayout.STATEMENT_ROWS)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _drop_sqlite_capture()
    with altering("outbox") as table:
        table.add_column(sa.Column("record_key", sa.String(1024), nullable=True))
        table.add_column(sa.Column("event_id", sa.String(36), nullable=True))
        table.add_column(sa.Column("payload", sa.Text(), nullable=True))
    several = op.get_bind().exec_driver_sql("SELECT 1 FROM outbox WHERE event_count > 1 LIMIT 1")
    if several.first() is not None:
        # Only PostgreSQL's capture writes rows of several events.
        for statement in _POSTGRES_ONE_ROW_PER_EVENT:
            op.execute(statement)
    else:  # every event keeps its id
        first = "({}::json ->> 0)" if postgres else "json_extract({}, '$[0]')"
        op.execute(
            f"UPDATE outbox SET record_key = {first.format('record_keys')}, "
            f"event_id = {first.format('event_ids')}, payload = payloads"
        )
    with altering("outbox") as table:
        for name in ("record_key", "event_id", "payload"):
            table.alter_column(name, nullable=False)
        for name in ("event_count", *_BATCH_COLUMNS):
            table.drop_column(name)
    with op.batch_alter_table("relay_position") as table:
        table.drop_column("published_rank")
    _capture(OutboxLayout.EVENT_ROWS)


# Every event numbered anew, in order (its row's id, then its place in the row); the relay's
# position moves to the last event of the last row it had published.
_POSTGRES_ONE_ROW_PER_EVENT = (
    """
    CREATE TEMPORARY TABLE outbox_events ON COMMIT DROP AS
    SELECT nextval(pg_get_serial_sequence('outbox', 'id')) AS new_id, ordered.*
    FROM (
      SELECT o.id AS row_id, o.tenant_id, o.collection, o.event_type, o.created_at,
             e.record_key, e.event_id, e.payload
      FROM outbox o CROSS JOIN LATERAL unnest(
        ARRAY(SELECT json_array_elements_text(o.record_keys::json)),
        ARRAY(SELECT json_array_elements_text(o.event_ids::json)),
        string_to_array(o.payloads, E'\\n')
      ) WITH ORDINALITY AS e (record_key, event_id, payload, place)
      ORDER BY o.id, e.place
    ) ordered
    """,
    """
    UPDATE relay_position SET published_through = coalesce(
      (SELECT max(new_id) FROM outbox_events WHERE row_id <= published_through), 0)
    """,
    "DELETE FROM outbox",
    """
    INSERT INTO outbox (id, tenant_id, collection, event_type, created_at, record_key,
                        event_id, payload, event_count, record_keys, event_ids, payloads)
    SELECT new_id, tenant_id, collection, event_type, created_at, record_key, event_id,
           payload, 1, '', '', ''
    FROM outbox_events
    """,
)


def _has_lz4() -> bool:
    """Whether the server was built with lz4 (PostgreSQL 14 on, where built so)."""
    values = op.get_bind().exec_driver_sql(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    return "lz4" in (values.scalar() or [])


def _drop_sqlite_capture() -> None:
    """SQLite rebuilds the outbox to change it: its triggers may not name it meanwhile."""
    if op.get_bind().dialect.name == "sqlite":
        for statement in event_capture.sqlite_drop_ddl():
            op.execute(statement)


def _capture(layout: OutboxLayout) -> None:
    for statement in event_capture.recreated(op.get_bind().dialect.name, layout):
        op.execute(statement)
