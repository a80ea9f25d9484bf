"""The ASGI application: surfaces mounted on one engine, opened and closed by the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from loadbay import __version__
from loadbay.api import activities, batch_inserts, health
from loadbay.api.errors import install_error_handlers
from loadbay.auth.tenants import DEFAULT_TENANT_ID, DEFAULT_TENANT_NAME
from loadbay.config import Settings
from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.ids import PublicIds
from loadbay.ingest.jobs import BatchJobs
from loadbay.ingest.records import Records
from loadbay.storage import migrate
from loadbay.storage.database import Database
from loadbay.storage.tenants import ensure_tenant

log = logging.getLogger("loadbay")

DESCRIPTION = """\
Bulk ingestion with per-record results. Every batch is validated record by record, written
with one set-based statement per chunk, and leaves a job record that can be inspected,
retried and deleted. Errors use `{"error": {"code", "message", "details"}}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(config.database_url, pool_size=config.db_pool_size)
        try:
            await _prepare_schema(db, migrate_now=config.migrate_on_start)
            async with db.write() as unit:
                await ensure_tenant(unit.conn, DEFAULT_TENANT_ID, DEFAULT_TENANT_NAME)
            app.state.db = db
            app.state.activity_batches = BatchJobs(
                db,
                ACTIVITIES,
                kind="batch_insert",
                ids=PublicIds("batch-"),
                chunk_size=config.chunk_size,
            )
            app.state.activity_records = Records(db, ACTIVITIES)
            log.info("loadbay %s ready on %s", __version__, db.dialect)
            yield
        finally:
            await db.dispose()

    app = FastAPI(title="Loadbay", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = config
    install_error_handlers(app)
    app.include_router(batch_inserts.router)
    app.include_router(activities.router)
    app.include_router(health.router)
    return app


async def _prepare_schema(db: Database, *, migrate_now: bool) -> None:
    if migrate_now:
        await migrate.upgrade(db)
        return
    current, head = await migrate.current_revision(db), migrate.head_revision()
    if current != head:
        raise RuntimeError(
            f"database schema is at revision {current}, this Loadbay needs {head}: "
            "run `loadbay migrate` first"
        )
