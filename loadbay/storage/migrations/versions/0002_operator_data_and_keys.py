"""API keys, idempotency keys, tenant templates; entities, events, states and erasures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", BIG_ID, autoincrement=True, nullable=False)


def _tenant(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants"
        ),
    ]


def _entity_ref(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("entity_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["entities.id"],
            name=f"fk_{table}_entity_id_entities",
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "api_keys",
        _id(),
        *_tenant("api_keys"),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "idempotency_keys",
        *_tenant("idempotency_keys"),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "tenant_settings",
        *_tenant("tenant_settings"),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_settings"),
    )
    op.create_table(
        "entities",
        _id(),
        *_tenant("entities"),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_entities"),
        sa.UniqueConstraint("tenant_id", "external_id", name="uq_entities_tenant_id_external_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "events",
        _id(),
        *_tenant("events"),
        sa.Column("event_id", sa.String(255), nullable=False),
        *_entity_ref("events"),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("tenant_id", "event_id", name="uq_events_tenant_id_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_events_entity_id_created_at_position", "events", ["entity_id", "created_at", "position"]
    )
    op.create_table(
        "states",
        _id(),
        *_tenant("states"),
        *_entity_ref("states"),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("state_key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_states"),
        sa.UniqueConstraint(
            "tenant_id", "entity_id", "state_key", name="uq_states_tenant_id_entity_id_state_key"
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "erasures",
        _id(),
        *_tenant("erasures"),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("events_erased", sa.Integer(), nullable=False),
        sa.Column("states_erased", sa.Integer(), nullable=False),
        sa.Column("erased_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasures"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for table in (
        "erasures",
        "states",
        "events",
        "entities",
        "tenant_settings",
        "idempotency_keys",
        "api_keys",
    ):
        op.drop_table(table)
