"""Every table, on one MetaData (Alembic's target)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from loadbay.storage.types import BigId, JsonText, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("collection", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("succeeded_count", Integer, nullable=False),
    Column("failed_count", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Index(None, "tenant_id", "kind", "id"),
    sqlite_autoincrement=True,
)

job_results = Table(
    "job_results",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("record_id", String(255), nullable=True),
    Column("error", String(64), nullable=True),
    Column("message", Text, nullable=True),
    # The submitted record, kept for failed ones so that they can be retried.
    Column("payload", JsonText(), nullable=True),
    PrimaryKeyConstraint("job_id", "idx"),
)

activities = Table(
    "activities",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("coordinator_id", String(255), nullable=False),
    Column("mentor_id", String(255), nullable=False),
    Column("activity_type", String(255), nullable=False),
    Column("activity_date", Date, nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "mentor_id", "activity_type", "activity_date"),
    Index(None, "tenant_id", "id"),
    sqlite_autoincrement=True,
)
