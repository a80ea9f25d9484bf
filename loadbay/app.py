"""The ASGI application: surfaces mounted on one engine, opened and closed by the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from loadbay import __version__, connection_balance, metrics
from loadbay.api import (
    activities,
    batch_inserts,
    events,
    files,
    health,
    instances,
    operator_data,
    ui,
)
from loadbay.api._batch_views import record_error_code as batch_insert_error_code
from loadbay.api.access_log import AccessLog
from loadbay.api.auth import Authentication
from loadbay.api.connection_spread import SpreadConnections
from loadbay.api.errors import install_error_handlers
from loadbay.api.instance_envelope import instance_envelope
from loadbay.api.middleware import IdempotencyKeys, RateLimitHeaders
from loadbay.api.operator_envelope import operator_envelope
from loadbay.api.operator_envelope import record_error_code as operator_error_code
from loadbay.api.request_ids import RequestIds
from loadbay.auth.idempotency import Idempotency
from loadbay.auth.keys import ApiKeys
from loadbay.auth.rate_limits import RateLimits, parse_limits
from loadbay.background import running
from loadbay.config import Settings
from loadbay.domain_events.broker_probe import BrokerProbe
from loadbay.domain_events.brokers import publisher_for
from loadbay.domain_events.feed import EventFeed
from loadbay.domain_events.relay import Relay
from loadbay.files.jobs import FileJobs
from loadbay.files.store import FileStore
from loadbay.files.worker import FileJobWorker
from loadbay.ingest.activities import ACTIVITIES, Activity
from loadbay.ingest.ids import HexIds, PublicIds
from loadbay.ingest.instance_reads import InstanceReads
from loadbay.ingest.jobs import BatchJobs
from loadbay.ingest.operator_service import OperatorData
from loadbay.ingest.records import Records
from loadbay.runtime import settle_heap
from loadbay.serve_roles import relay_runs_beside
from loadbay.storage import schema_revision
from loadbay.storage.database import Database
from loadbay.ui.views import Dashboard

log = logging.getLogger("loadbay")

DESCRIPTION = """\
Bulk ingestion with per-record results. Every batch is validated record by record, written
with one set-based statement per chunk, and leaves a job record.

Authenticate with `Authorization: Bearer lb_live_…`. Every write accepts an
`Idempotency-Key` header: a repeat within 24 h replays the first response.
"""


# Any route that reads or writes may meet a lost database connection.
DATABASE_UNAVAILABLE = {
    "description": "The database cannot be reached (restart, failover): nothing of the request "
    "was stored. Retry after `Retry-After` seconds. The body is the route's error envelope, "
    "with code `database_unavailable` (`DATABASE_UNAVAILABLE` on the operator data API)."
}


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(config.database_url, pool_size=config.db_pool_size)
        metrics.watch_pool(db.engine.sync_engine, db.pool_capacity)
        try:
            await _prepare_schema(db, migrate_now=config.migrate_on_start)
            await _wire(app, db, config)
            async with _wal_checkpoints(db), _relay(db, config), _file_worker(app, config):
                settle_heap()
                log.info("loadbay %s ready on %s", __version__, db.dialect)
                connection_balance.serving()
                yield
        finally:
            if hasattr(app.state, "rate_limits"):
                app.state.rate_limits.close()
            await db.dispose()

    # /docs and /redoc with their assets served from here, not a CDN: self-hosted servers
    # often have no internet access.
    app = FastAPIOffline(
        title="Loadbay",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={503: DATABASE_UNAVAILABLE},
    )
    app.state.settings = config
    install_error_handlers(
        app,
        [(operator_data.PREFIX, operator_envelope), (instances.PREFIX, instance_envelope)],
    )
    app.add_middleware(IdempotencyKeys, max_body_bytes=config.max_body_bytes)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(AccessLog)  # it sees every answer, replays too
    app.add_middleware(SpreadConnections)
    app.add_middleware(RequestIds)  # outermost: every answer and log line has the id
    app.include_router(batch_inserts.router)
    app.include_router(activities.router)
    app.include_router(operator_data.router)
    app.include_router(events.router)
    app.include_router(ui.router)
    app.include_router(files.router)
    app.include_router(instances.router)
    app.include_router(health.router)
    return app


async def _wire(app: FastAPI, db: Database, config: Settings) -> None:
    app.state.db = db
    app.state.api_keys = keys = ApiKeys(db, cache_seconds=config.lookup_cache_seconds)
    bootstrap = await keys.bootstrap()
    if bootstrap is not None:
        log.warning(
            "created tenant %r and its admin API key (shown this once, store it now): %s",
            bootstrap.info.tenant_id,
            bootstrap.secret,
        )
    if config.auth == "off":
        log.warning(
            "LOADBAY_AUTH=off: every request acts as an admin of the default tenant. "
            "Never run like this outside local development."
        )
    app.state.rate_limits = limits = RateLimits(
        config.rate_limit_url, parse_limits(config.rate_limits)
    )
    app.state.authentication = Authentication(keys, limits, keys_required=config.auth != "off")
    app.state.idempotency = idempotency = Idempotency(db)
    await idempotency.prune()
    app.state.activity_batches = BatchJobs(
        db,
        kind="batch_insert",
        ids=PublicIds("batch-"),
        chunk_size=config.chunk_size,
        results_from=ACTIVITIES,
    )
    app.state.activity_records = Records(db, ACTIVITIES, Activity)
    operator_jobs = BatchJobs(
        db,
        kind="operator",
        ids=HexIds("job_"),
        chunk_size=config.chunk_size,
        keep_successes=False,
    )
    app.state.operator_data = OperatorData(
        db, operator_jobs, config.chunk_size, cache_seconds=config.lookup_cache_seconds
    )
    app.state.event_feed = EventFeed(db)
    needs_broker = config.events_url and config.relay_in_server and config.ready_needs_broker
    app.state.broker_probe = BrokerProbe(config) if needs_broker else None
    app.state.files = file_store = FileStore(config.files_url, **config.s3_options())
    app.state.file_jobs = FileJobs(db, file_store, config)
    app.state.instance_reads = InstanceReads(db)
    app.state.dashboard = Dashboard(
        db,
        keys,
        record_errors={
            "batch_insert": batch_insert_error_code,
            "operator": operator_error_code,
        },
    )


@asynccontextmanager
async def _wal_checkpoints(db: Database) -> AsyncIterator[None]:
    """On SQLite, the write-ahead log checkpointed beside the writers (storage.wal_checkpoints)."""
    if db.wal_checkpoints is None:
        yield
        return
    async with running(db.wal_checkpoints.run):
        yield


@asynccontextmanager
async def _relay(db: Database, config: Settings) -> AsyncIterator[None]:
    """The event relay as a background task, when a broker is configured and no process
    beside this one runs it (see serve_roles)."""
    if config.events_url is None or not config.relay_in_server or relay_runs_beside():
        yield
        return
    async with running(Relay(db, publisher_for(config), config).run):
        yield


@asynccontextmanager
async def _file_worker(app: FastAPI, config: Settings) -> AsyncIterator[None]:
    """Runs asynchronous file jobs, and resumes those whose node died mid-file."""
    worker = FileJobWorker(app.state.file_jobs, timedelta(seconds=config.job_stale_seconds))
    # A stopped job commits the chunks in flight and is handed back; it resumes with the rest.
    async with running(worker.run, cancel=True):
        yield


async def _prepare_schema(db: Database, *, migrate_now: bool) -> None:
    if migrate_now:
        # Imported here: Alembic stays out of the memory of workers that never migrate.
        from loadbay.storage import migrate

        await migrate.upgrade(db)
        return
    current, head = await schema_revision.current_revision(db), schema_revision.HEAD
    if current != head:
        raise RuntimeError(
            f"database schema is at revision {current}, this Loadbay needs {head}: "
            "run `loadbay migrate` first"
        )
