"""Settings: every knob is a `LOADBAY_*` environment variable (see the README table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOADBAY_", extra="ignore")

    data_dir: Path = Field(Path("./loadbay-data"), description="Where the embedded defaults live.")
    database_url: str = Field(
        "",
        description="sqlite+aiosqlite:///<file> or postgresql+asyncpg://user@host/db.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    migrate_on_start: bool = Field(True, description="Run Alembic migrations at start-up.")

    batch_max_records: int = Field(1000, ge=1, description="Most records in one batch request.")
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest accepted request body, in bytes."
    )
    chunk_size: int = Field(
        1000, ge=1, le=10_000, description="Records written per bulk statement (PostgreSQL)."
    )
    db_pool_size: int = Field(10, ge=1, description="Database connections per process.")

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'loadbay.db'}"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
