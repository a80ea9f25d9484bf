"""Settings: every knob is a `LOADBAY_*` environment variable (see the README table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# 6,000 batches a minute of 1,000 records is 100k records/s: above what one node writes, so a
# single loader is never held below the server's speed (600 held it at 10k/s). Lower it to
# share a node fairly between tenants.
DEFAULT_RATE_LIMITS = (
    "ingest:batch=6000/minute,ingest:files=120/minute,read=3000/minute,admin=120/minute"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOADBAY_", extra="ignore")

    data_dir: Path = Field(Path("./loadbay-data"), description="Where the embedded defaults live.")
    database_url: str = Field(
        "",
        description="sqlite+aiosqlite:///<file> or postgresql+asyncpg://user@host/db.",
    )
    files_url: str = Field(
        "", description="file://<dir> (default <data dir>/files) or s3://bucket/prefix."
    )
    s3_endpoint: str | None = Field(None, description="S3-compatible endpoint URL (MinIO, …).")
    s3_region: str | None = Field(None, description="S3 region; AWS_REGION works too.")
    max_file_bytes: int = Field(
        50 * 1024**3, ge=1, description="Largest file accepted by PUT /files/{name}."
    )
    hrid_prefix: str = Field(
        "in", pattern=r"^[A-Za-z0-9]{0,16}$", description="Prefix of assigned instance hrids."
    )
    instance_optimistic_locking: Literal["fail", "off"] = Field(
        "fail",
        description="Updating a stored instance: `fail` unless its `_version` equals the stored "
        "one (FOLIO's default); `off` overwrites whatever is stored.",
    )
    job_stale_seconds: float = Field(
        30, gt=0, description="A file job whose runner is silent this long is taken over."
    )
    file_chunk_lines: int = Field(
        2000, ge=1, le=100_000, description="Lines of a records file written per transaction."
    )
    file_chunk_writers: int = Field(
        3,
        ge=1,
        le=16,
        description="Chunks of one records file written at once, each on its own connection; "
        "chunks sharing a record commit in file order.",
    )

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | None = Field(
        None, ge=1, description="Worker processes of `loadbay serve`; default one per CPU core."
    )
    migrate_on_start: bool = Field(True, description="Run Alembic migrations at start-up.")

    batch_max_records: int = Field(
        1000, ge=1, description="Most activities in one batch-insert request."
    )
    max_batch_entities: int = Field(1000, ge=1, description="Most entities in one batch.")
    max_batch_events: int = Field(5000, ge=1, description="Most events in one batch.")
    max_batch_states: int = Field(1000, ge=1, description="Most states in one batch.")
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest accepted request body, in bytes."
    )
    chunk_size: int = Field(
        1000, ge=1, le=10_000, description="Records written per bulk statement (PostgreSQL)."
    )
    db_pool_size: int = Field(10, ge=1, description="Database connections per process.")
    metrics_token: str | None = Field(
        None,
        min_length=1,
        description="When set, /metrics answers only `Authorization: Bearer <this>` "
        "(Prometheus' `authorization` scrape setting).",
    )
    lookup_cache_seconds: float = Field(
        2.0,
        ge=0,
        description="How long a process reuses an API key or template it looked up: a revocation "
        "or template change made by another process takes effect within this.",
    )

    events_url: str | None = Field(
        None, description="nats://, redis://, amqp:// or kafka:// broker; unset: outbox and feed."
    )
    events_subject: str = Field(
        "loadbay.{tenant}.{collection}",
        description="Subject/topic/stream template; {env}, {tenant} and {collection} are filled.",
    )
    events_instance_subject: str = Field(
        "{env}.{tenant}.inventory.instance",
        description="Subject template of instance events (FOLIO's topic naming).",
    )
    events_env: str = Field("loadbay", description="The {env} of subject templates.")
    events_nats_stream: str = Field("LOADBAY", description="JetStream stream for the events.")
    events_amqp_exchange: str = Field("loadbay", description="RabbitMQ topic exchange.")
    events_retention_hours: float = Field(
        72,
        gt=0,
        description="Published events older than this (since written) leave the outbox.",
    )
    relay_in_server: bool = Field(
        True, description="`serve` runs the event relay (beside its workers, or in its one worker)."
    )
    ready_needs_broker: bool = Field(
        True,
        description="On a node that runs the relay, /readyz needs the broker reachable; "
        "`false` keeps the node ready through a broker outage (events wait in the outbox).",
    )
    relay_batch_size: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Events per relay cycle (default: 5,000 on PostgreSQL, 2,000 on SQLite).",
    )

    auth: Literal["on", "off"] = Field("on", description="`off` only for local development.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per log line, for log shippers."
    )
    rate_limit_url: str = Field("memory://", description="`limits` storage: memory:// or redis://")
    rate_limits: str = Field(
        DEFAULT_RATE_LIMITS, description="Per key and scope: `scope=N/period,…`."
    )

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'loadbay.db'}"
        if not self.files_url:
            self.files_url = (self.data_dir.resolve() / "files").as_uri()
        return self

    def relay_batch(self, database_default: int) -> int:
        """Events per relay cycle: `relay_batch_size`, or the database's own default
        (storage.kinds: DatabaseKind.relay_batch)."""
        if self.relay_batch_size is not None:
            return self.relay_batch_size
        return database_default

    def s3_options(self) -> dict[str, Any]:
        """obstore options for an s3:// files URL; credentials come from the AWS_* variables."""
        config = {}
        if self.s3_endpoint:
            config["endpoint"] = self.s3_endpoint
        if self.s3_region:
            config["region"] = self.s3_region
        options: dict[str, Any] = {"config": config}
        if self.s3_endpoint and self.s3_endpoint.startswith("http://"):
            options["client_options"] = {"allow_http": True}
        return options
