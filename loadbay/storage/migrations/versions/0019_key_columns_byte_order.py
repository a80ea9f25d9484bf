"""The text columns bulk writes look up and index compare byte by byte on PostgreSQL.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-27

COLLATE "C" on the keys of the tables written in bulk (tenant, natural keys, hrid and
matchKey, title links' ends): index searches and inserts compared them through the
database's collation, strcoll with both values copied, 20-30% of those statements' CPU (see
`storage.types.key_text`). PostgreSQL rebuilds each index on such a column, without
rewriting the table, and the tables are analyzed again: on a large database, plan for the
time that takes, under an exclusive lock of each table. SQLite compares text byte by byte
already.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# (table, column, length), as `storage/tables.py` declares them with `key_text`.
KEY_COLUMNS = (
    ("activities", "tenant_id", 64),
    ("activities", "mentor_id", 255),
    ("activities", "activity_type", 255),
    ("entities", "tenant_id", 64),
    ("entities", "external_id", 255),
    ("events", "tenant_id", 64),
    ("events", "event_id", 255),
    ("states", "tenant_id", 64),
    ("states", "state_key", 64),
    ("outbox", "tenant_id", 64),
    ("instances", "tenant_id", 64),
    ("instances", "instance_id", 36),
    ("instances", "hrid", 64),
    ("instances", "match_key", 255),
    ("instance_title_links", "tenant_id", 64),
    ("instance_title_links", "preceding_instance_id", 36),
    ("instance_title_links", "succeeding_instance_id", 36),
)


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in dict.fromkeys(table for table, _, _ in KEY_COLUMNS):
        changes = ", ".join(
            f'ALTER COLUMN "{column}" TYPE VARCHAR({length}) COLLATE {collation}'
            for name, column, length in KEY_COLUMNS
            if name == table
        )
        op.execute(f'ALTER TABLE "{table}" {changes}')
        # The altered columns lose their planner statistics, which no index rebuild brings
        # back: plans made without them cost seconds a statement (see 0016).
        op.execute(f'ANALYZE "{table}"')
