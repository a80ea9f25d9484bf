"""Every table, on one MetaData (Alembic's target)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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
    text,
)

from loadbay.storage.types import BigId, JsonText, UtcDateTime, key_text

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

# The job and the index in it of the record that created a row: a batch's results for the
# records it created are read from its rows instead of being stored a second time.
ORIGIN_JOB, ORIGIN_INDEX = "origin_job_id", "origin_index"

activities = Table(
    "activities",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", key_text(64), nullable=False),  # no foreign key: see BULK_TENANT
    Column("coordinator_id", String(255), nullable=False),
    Column("mentor_id", key_text(255), nullable=False),
    Column("activity_type", key_text(255), nullable=False),
    Column("activity_date", Date, nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column(ORIGIN_JOB, BigId, nullable=True),
    Column(ORIGIN_INDEX, Integer, nullable=True),
    UniqueConstraint("tenant_id", "mentor_id", "activity_type", "activity_date"),
    Index(None, "tenant_id", "id"),
    Index(None, ORIGIN_JOB),
    sqlite_autoincrement=True,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    # The key's first characters, shown in listings; the key itself is only ever hashed.
    Column("prefix", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("scopes", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    sqlite_autoincrement=True,
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    # NULL while the first request with this key is still running.
    Column("status_code", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("response_headers", JsonText(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # Renewed while the claiming request runs: a claim gone quiet belongs to a dead request.
    Column("heartbeat_at", UtcDateTime(), nullable=True),
    # The job the claiming request committed, in that job's transaction: if its answer is
    # lost, a resend answers from the job instead of running the batch again.
    Column("job_id", BigInteger, nullable=True),
    PrimaryKeyConstraint("tenant_id", "key"),
)

tenant_settings = Table(
    "tenant_settings",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("template_id", String(64), nullable=False),
    Column("template", JsonText(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# JSON payloads are stored as JSON text: any JSON goes in (jsonb refuses \u0000) and
# nothing in Loadbay queries inside them.
entities = Table(
    "entities",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", key_text(64), nullable=False),  # no foreign key: see BULK_TENANT
    Column("external_id", key_text(255), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("data", JsonText(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "external_id"),
    sqlite_autoincrement=True,
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", key_text(64), nullable=False),  # no foreign key: see BULK_TENANT
    Column("event_id", key_text(255), nullable=False),
    Column("entity_id", BigId, ForeignKey("entities.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("data", JsonText(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # The event's index in its batch: rows are written in key order, events read in this one.
    Column("position", Integer, nullable=False),
    UniqueConstraint("tenant_id", "event_id"),
    Index(None, "entity_id", "created_at", "position"),
    sqlite_autoincrement=True,
)

states = Table(
    "states",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", key_text(64), nullable=False),  # no foreign key: see BULK_TENANT
    Column("entity_id", BigId, ForeignKey("entities.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("state_key", key_text(64), nullable=False),
    Column("value", JsonText(none_as_null=False), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "entity_id", "state_key"),
    sqlite_autoincrement=True,
)

erasures = Table(
    "erasures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("events_erased", Integer, nullable=False),
    Column("states_erased", Integer, nullable=False),
    Column("erased_at", UtcDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

# A row per write statement: the events of every record it changed, in record id order (on
# SQLite, whose triggers act per row, and for events written from Python: one event a row).
# One row of 1,000 events instead of 1,000 rows took PostgreSQL's capture cost from 9 to 3.6
# ms per 1,000 entities: one heap tuple and index entry, and the text compressed (lz4) to a
# sixteenth of the WAL. Feed cursors and the relay's position name a row, and an event in it.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", key_text(64), nullable=False),  # no foreign key: see BULK_TENANT
    Column("collection", String(64), nullable=False),
    Column("event_type", String(8), nullable=False),
    Column("event_count", Integer, nullable=False),
    # The events' record keys and ids, each a JSON array of strings, in event order.
    Column("record_keys", Text, nullable=False),
    Column("event_ids", Text, nullable=False),
    # Each event's whole value as published ({eventId, eventTs, type, tenant, old?, new, …}),
    # compact JSON, one a line: compact JSON holds no line break.
    Column("payloads", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "tenant_id", "id"),
    sqlite_autoincrement=True,
)

# How far the relay has published: every outbox id up to `published_through` went to the
# broker. One row. The relay reads on from there up to the feed's horizon (feed_horizon), so
# capture writes nothing per event for it, and publishing a batch rewrites this one row: a
# list of pending ids cost an insert per event written and a delete per event published.
relay_position = Table(
    "relay_position",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("published_through", BigId, nullable=False),
    # How many events of the next row went out too: a batch the broker acknowledged in part.
    Column("published_rank", Integer, nullable=False, server_default="0"),
    CheckConstraint("id = 1", name="ck_relay_position_one_row"),
)

# BULK_TENANT: tables written in bulk carry their tenant without a foreign key. Every row's
# tenant comes from an authenticated API key (whose tenant row exists, by its own foreign
# key, and tenants are never deleted); checking it again per row and per outbox event cost
# a fifth of PostgreSQL's time in a bulk upsert.

# What SQLite's capture triggers stamp on the events of the running write: one row while a
# write captures events, none otherwise (PostgreSQL keeps it in transaction-local settings).
capture_context = Table(
    "capture_context",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_ref", String(255), nullable=True),
    Column("event_ts", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # The first 24 characters of every event id of this write (see event_capture).
    Column("event_id_prefix", String(24), nullable=False),
    # The job's id and the write's time as the events' JSON has them: formatted once per
    # write, not per event (revision 0020).
    Column("job_json", Text, nullable=True),
    Column("at_json", String(40), nullable=True),
)

instances = Table(
    "instances",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", key_text(64), nullable=False),  # no foreign key: see BULK_TENANT
    Column("instance_id", key_text(36), nullable=False),
    Column("hrid", key_text(64), nullable=False),
    Column("match_key", key_text(255), nullable=True),
    # The instance JSON as stored, without `_version` (that is the version column).
    Column("document", JsonText(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "instance_id"),
    # Partial on PostgreSQL, on a predicate only a lookup by the value implies: on a table
    # without statistics, it read a chunk's stored versions (by id) through any index
    # leading with the tenant, the tenant alone as its condition (migration 0016). SQLite
    # never did, and ignored partial ones for lookups by hrid: whole ones there.
    *(
        Index(
            f"uq_instances_tenant_id_{value}",
            "tenant_id",
            value,
            unique=True,
            postgresql_where=text(f"{value} IS NOT NULL"),
        )
        for value in ("hrid", "match_key")
    ),
    sqlite_autoincrement=True,
)

# Preceding/succeeding titles of instances, as FOLIO keeps them: a row per link between two
# instances, or between one instance and a title outside the catalogue. `owner_instance_id`
# is the instance whose record declared the link.
instance_title_links = Table(
    "instance_title_links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", key_text(64), nullable=False),  # no foreign key: see BULK_TENANT
    Column("link_id", String(36), nullable=False),
    Column("owner_instance_id", String(36), nullable=False),
    Column("preceding_instance_id", key_text(36), nullable=True),
    Column("succeeding_instance_id", key_text(36), nullable=True),
    Column("title", Text, nullable=True),
    Column("hrid", String(64), nullable=True),
    Column("identifiers", JsonText(), nullable=True),
    Index("ix_instance_title_links_preceding", "tenant_id", "preceding_instance_id"),
    Index("ix_instance_title_links_succeeding", "tenant_id", "succeeding_instance_id"),
    sqlite_autoincrement=True,
)

hrid_counters = Table(
    "hrid_counters",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

file_jobs = Table(
    "file_jobs",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("records_file", String(1024), nullable=False),
    Column("publish_events", Boolean, nullable=False),
    Column("chunk_lines", Integer, nullable=False),
    # Lines of the chunks committed so far (file_job_chunks lists which).
    Column("lines_done", BigInteger, nullable=False),
    Column("lines_total", BigInteger, nullable=True),
    Column("errors_count", BigInteger, nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("heartbeat_at", UtcDateTime(), nullable=True),
    Column("error", Text, nullable=True),
)

# The chunks of a file job committed so far; chunks written at once may commit out of order,
# and a resumed job skips exactly these.
file_job_chunks = Table(
    "file_job_chunks",
    metadata,
    Column(
        "job_id",
        BigId,
        ForeignKey("file_jobs.job_id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("chunk", Integer, primary_key=True, autoincrement=False),
)
