"""Instances, per-tenant hrid counters, and file jobs with their checkpoints.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("hrid", sa.String(64), nullable=False),
        sa.Column("match_key", sa.String(255), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_instances_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
        sa.UniqueConstraint("tenant_id", "instance_id", name="uq_instances_tenant_id_instance_id"),
        sa.UniqueConstraint("tenant_id", "hrid", name="uq_instances_tenant_id_hrid"),
        sa.UniqueConstraint("tenant_id", "match_key", name="uq_instances_tenant_id_match_key"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "hrid_counters",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_hrid_counters_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_hrid_counters"),
    )
    op.create_table(
        "file_jobs",
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("records_file", sa.String(1024), nullable=False),
        sa.Column("publish_events", sa.Boolean(), nullable=False),
        sa.Column("chunk_lines", sa.Integer(), nullable=False),
        sa.Column("lines_done", sa.BigInteger(), nullable=False),
        sa.Column("lines_total", sa.BigInteger(), nullable=True),
        sa.Column("errors_count", sa.BigInteger(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_file_jobs_job_id_jobs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name="pk_file_jobs"),
    )


def downgrade() -> None:
    op.drop_table("file_jobs")
    op.drop_table("hrid_counters")
    op.drop_table("instances")
