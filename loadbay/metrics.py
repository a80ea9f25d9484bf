"""Prometheus metrics of this process — or, under `loadbay serve` with several workers, of
all its workers together (prometheus_client's multiprocess mode, one folder per server).

Counters and histograms live here; gauges read from the database at scrape time (the outbox
lag) are added by the `/metrics` route.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import Counter as Counts
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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
from sqlalchemy.engine import Engine

from loadbay.metrics_sharing import MULTIPROCESS_DIR

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


def watch_pool(engine: Engine, capacity: int) -> None:
    """Keep the pool gauges current. A connection counts from its checkout to its return;
    SQLAlchemy also reports a return for a reconnect that failed (no checkout before it) and
    none for a connection detached by the garbage collector, hence the mark on each."""
    DB_POOL_CAPACITY.set(capacity)

    def checked_out(_dbapi: Any, record: Any, _proxy: Any) -> None:
        record.info[_IN_USE] = True
        DB_CONNECTIONS_IN_USE.inc()

    def given_back(_dbapi: Any, record: Any) -> None:
        if record.info.pop(_IN_USE, False):
            DB_CONNECTIONS_IN_USE.dec()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", given_back)
    event.listen(engine, "detach", given_back)


_IN_USE = "loadbay_in_use"


def count_records(collection: str, tenant: str, outcomes: Iterable[str]) -> None:
    """Count committed results; call after the commit, never inside the transaction."""
    count_outcomes(collection, tenant, Counts(outcomes))


def count_outcomes(collection: str, tenant: str, counts: Mapping[str, int]) -> None:
    """`count_records`, from the number of records of each outcome."""
    for outcome, count in counts.items():
        if count:
            RECORDS.labels(collection, tenant, outcome).inc(count)


def observe_times(histogram: Histogram, amount: float, times: int) -> None:
    """`times` observations of one `amount`, at the cost of one: what `observe` does, with
    the counts raised by `times`. prometheus_client has no weighted observation, and each
    `observe` costs 1.7 µs in multiprocess mode: per event, a fifth of the relay's CPU."""
    histogram._sum.inc(amount * times)
    histogram._buckets[bisect_left(histogram._upper_bounds, amount)].inc(times)


def render(extra: Iterable[str] = ()) -> bytes:
    """The text exposition of every metric, then the `extra` lines (already formatted)."""
    folder = os.environ.get(MULTIPROCESS_DIR)
    if folder:
        _forget_stopped_workers(folder)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = PROCESS_REGISTRY
    text = generate_latest(registry)
    tail = "".join(f"{line}\n" for line in extra)
    return text + tail.encode()


def _forget_stopped_workers(folder: str) -> None:
    """Drop the live gauges of workers that stopped (a crash, a restart by uvicorn): theirs
    would stay in the sums for good."""
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not _running(pid):
            multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    return True
