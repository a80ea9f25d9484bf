"""Prometheus metrics of this process — or, under `loadbay serve` with several workers, of
all its workers together (prometheus_client's multiprocess mode, one folder per server).

Counters and histograms live here; gauges read from the database at scrape time (the outbox
lag) are added by the `/metrics` route.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter as Counts
from collections.abc import Iterable

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600)

RELAY_PUBLISHED = Counter(
    "loadbay_relay_published_events",
    "Domain events the broker acknowledged.",
    ["broker"],
)
RELAY_ERRORS = Counter(
    "loadbay_relay_errors",
    "Relay rounds that failed (broker unreachable, a publish not acknowledged, …).",
    ["broker"],
)
RELAY_PUBLISH_SECONDS = Histogram(
    "loadbay_relay_publish_seconds",
    "Time to publish one batch of events and receive every acknowledgement.",
    ["broker"],
    buckets=_LATENCY_BUCKETS,
)
RELAY_DELAY_SECONDS = Histogram(
    "loadbay_relay_delay_seconds",
    "From an event's commit to its acknowledgement by the broker (the relay's lag per event).",
    ["broker"],
    buckets=_DELAY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "loadbay_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "loadbay_http_request_seconds",
    "Time from a request's arrival to its answer, by route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
RECORDS = Counter(
    "loadbay_records",
    "Records given a committed result, by collection, tenant and outcome.",
    ["collection", "tenant", "outcome"],
)
BATCH_RECORDS = Histogram(
    "loadbay_batch_records",
    "Records per batch request.",
    ["collection"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
FILE_LINES = Counter(
    "loadbay_file_lines",
    "Lines of records files committed by file jobs; rate() is the lines/s.",
)


DB_CONNECTIONS_IN_USE = Gauge(
    "loadbay_db_connections_in_use",
    "Database connections checked out of the pool now (every worker together).",
    multiprocess_mode="livesum",
)
DB_POOL_CAPACITY = Gauge(
    "loadbay_db_pool_capacity",
    "Connections the pool may open, overflow included (every worker together).",
    multiprocess_mode="livesum",
)


def watch_pool(engine: AsyncEngine, capacity: int) -> None:
    """Keep the pool gauges current: checkouts and check-ins move the connections in use."""
    DB_POOL_CAPACITY.set(capacity)
    event.listen(engine.sync_engine, "checkout", lambda *_: DB_CONNECTIONS_IN_USE.inc())
    event.listen(engine.sync_engine, "checkin", lambda *_: DB_CONNECTIONS_IN_USE.dec())


def count_records(collection: str, tenant: str, outcomes: Iterable[str]) -> None:
    """Count committed results; call after the commit, never inside the transaction."""
    for outcome, count in Counts(outcomes).items():
        RECORDS.labels(collection, tenant, outcome).inc(count)


def share_between_workers() -> str | None:
    """Make the worker processes started from here count into one folder, empty at start.

    Call before the workers start; they inherit the folder through the environment. Returns
    the folder when it was made here (the caller removes it at exit), None when the
    environment named one already.
    """
    folder = os.environ.get(MULTIPROCESS_DIR)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        return None
    folder = tempfile.mkdtemp(prefix="loadbay-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    return folder


def render(extra: Iterable[str] = ()) -> bytes:
    """The text exposition of every metric, then the `extra` lines (already formatted)."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = PROCESS_REGISTRY
    text = generate_latest(registry)
    tail = "".join(f"{line}\n" for line in extra)
    return text + tail.encode()
