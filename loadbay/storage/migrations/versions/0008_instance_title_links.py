"""Preceding and succeeding titles of instances as links of their own, as FOLIO keeps them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from loadbay.ingest import instance_titles

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOVED_FIELDS = (
    instance_titles.PRECEDING,
    instance_titles.SUCCEEDING,
    *instance_titles.DROPPED_FIELDS,
)
_LINK_COLUMNS = (
    "tenant_id",
    "link_id",
    "owner_instance_id",
    "preceding_instance_id",
    "succeeding_instance_id",
    "title",
    "hrid",
    "identifiers",
)


def upgrade() -> None:
    op.create_table(
        "instance_title_links",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("link_id", sa.String(36), nullable=False),
        sa.Column("owner_instance_id", sa.String(36), nullable=False),
        sa.Column("preceding_instance_id", sa.String(36), nullable=True),
        sa.Column("succeeding_instance_id", sa.String(36), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("hrid", sa.String(64), nullable=True),
        sa.Column("identifiers", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_instance_title_links"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_instance_title_links_preceding",
        "instance_title_links",
        ["tenant_id", "preceding_instance_id"],
    )
    op.create_index(
        "ix_instance_title_links_succeeding",
        "instance_title_links",
        ["tenant_id", "succeeding_instance_id"],
    )
    # Titles used to be kept inside the instance document: move them out.
    _move_titles_out_of_documents()


def _move_titles_out_of_documents() -> None:
    """Earlier versions kept titles (and the parent/child fields FOLIO drops) inside the
    document: they become links owned by their instance, and leave the document."""
    conn = op.get_bind()
    instances = sa.table(
        "instances",
        sa.column("id", sa.BigInteger()),
        sa.column("tenant_id", sa.String()),
        sa.column("document", sa.Text()),
    )
    links = sa.table("instance_title_links", *(sa.column(c) for c in _LINK_COLUMNS))
    mentions = sa.or_(*(instances.c.document.like(f'%"{field}"%') for field in _MOVED_FIELDS))
    after = 0
    while True:
        page = conn.execute(
            sa.select(instances.c.id, instances.c.tenant_id, instances.c.document)
            .where(mentions, instances.c.id > after)
            .order_by(instances.c.id)
            .limit(1000)
        ).all()
        if not page:
            return
        for row_id, tenant_id, text in page:
            document = json.loads(text)
            found = instance_titles.take_titles(document) or []
            conn.execute(
                sa.update(instances)
                .where(instances.c.id == row_id)
                .values(document=json.dumps(document, ensure_ascii=False, separators=(",", ":")))
            )
            for link in found:
                identifiers = link["identifiers"]
                encoded = None if identifiers is None else json.dumps(identifiers)
                values = {**link, "tenant_id": tenant_id, "identifiers": encoded}
                conn.execute(sa.insert(links).values(**values))
        after = page[-1][0]


def downgrade() -> None:
    # The links go with their table: a downgrade forgets every instance's titles.
    op.drop_index("ix_instance_title_links_succeeding", table_name="instance_title_links")
    op.drop_index("ix_instance_title_links_preceding", table_name="instance_title_links")
    op.drop_table("instance_title_links")
