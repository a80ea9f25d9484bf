"""/metrics: requests by route, records by outcome, the relay's throughput, lag and errors.

Counters are process-wide and other tests move them too: each test compares before and after.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from loadbay import metrics
from loadbay.app import create_app
from loadbay.config import Settings
from tests.api.instances.helpers import bulk, instance, upload
from tests.api.operator.helpers import API, deposit, player, use_template
from tests.conftest import ClientFactory
from tests.domain_events.broker_readers import broker_url, unique_names
from tests.domain_events.helpers import client_for, wait_until_published
from tests.factories import BATCHES, activity, batch
from tests.prometheus_samples import Samples, parse, value
from tests.servers import free_port, loadbay_env, start_server


def records_counted(
    earlier: Samples, later: Samples, labels: dict[str, str], outcome: str
) -> float:
    """How many records of `outcome` loadbay_records_total counted between two scrapes."""
    name, counted = "loadbay_records_total", {**labels, "outcome": outcome}
    return value(later, name, **counted) - value(earlier, name, **counted)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    route = {"method": "GET", "route": "/api/v1/batch-inserts/{batch_id}"}
    before = await scrape(client)

    await client.post(BATCHES, json=batch(activity(1)))
    for _ in range(2):
        assert (await client.get(f"{BATCHES}/batch-001")).status_code == 200
    assert (await client.get(f"{BATCHES}/batch-999")).status_code == 404

    after = await scrape(client)
    requests = "loadbay_http_requests_total"
    assert (
        value(after, requests, **route, status="200")
        - value(before, requests, **route, status="200")
        == 2
    )
    assert (
        value(after, requests, **route, status="404")
        - value(before, requests, **route, status="404")
        == 1
    )
    latency = "loadbay_http_request_seconds_count"
    assert value(after, latency, **route) - value(before, latency, **route) == 3
    assert "batch-001" not in "".join(label for _, labels in after for _, label in labels)


async def test_a_path_no_route_knows_is_one_series_not_one_per_path(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)

    for path in ("/no/such/thing", "/no/such/other-thing"):
        assert (await client.get(path)).status_code == 404

    after = await scrape(client)
    labels = {"method": "GET", "route": "unrouted", "status": "404"}
    name = "loadbay_http_requests_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 2
    assert not any("such" in label for _, labels_ in after for _, label in labels_)


async def test_records_are_counted_by_collection_and_outcome(client: httpx.AsyncClient) -> None:
    before = await scrape(client)

    records = [activity(1), activity(2), activity(3, duration_minutes=0), activity(1)]
    answer = await client.post(BATCHES, json=batch(*records))

    assert answer.json()["inserted_count"] == 2
    after = await scrape(client)
    name = "loadbay_records_total"
    for outcome, count in (("created", 2), ("failed", 2), ("updated", 0)):
        labels = {"collection": "activities", "tenant": "default", "outcome": outcome}
        assert value(after, name, **labels) - value(before, name, **labels) == count
    sizes = "loadbay_batch_records_bucket"
    for le, count in (("1.0", 0), ("10.0", 1)):
        bucket = {"collection": "activities", "le": le}
        assert value(after, sizes, **bucket) - value(before, sizes, **bucket) == count


async def test_operator_records_are_counted_by_outcome(make_client: ClientFactory) -> None:
    # Operator batches keep no result for a success: their outcomes are counted as written.
    client = await make_client(tenant="op1")
    await use_template(client)
    before = await scrape(client)
    no_email = player(9)
    del no_email["data"]["email"]

    first = [player(1), player(2), no_email]
    await client.post(f"{API}/batch/entities", json=first)
    loaded = await scrape(client)
    # Player 3 twice: the last one is written, both records count as created.
    second = [player(1, status="suspended"), player(3), player(3, status="closed")]
    answer = await client.post(f"{API}/batch/entities", json=second)

    assert answer.json()["data"] | {"jobId": None} == {
        "jobId": None,
        "succeeded": 3,
        "failed": 0,
        "errors": [],
    }
    after = await scrape(client)
    labels = {"collection": "entities", "tenant": "op1"}
    for (earlier, later), outcome, count in (
        ((before, loaded), "created", 2),
        ((before, loaded), "failed", 1),
        ((loaded, after), "created", 2),
        ((loaded, after), "updated", 1),
        ((loaded, after), "failed", 0),
    ):
        assert records_counted(earlier, later, labels, outcome) == count, (outcome, count)


async def test_events_stored_already_are_counted_as_unchanged(make_client: ClientFactory) -> None:
    client = await make_client(tenant="op2")
    await use_template(client)
    await client.post(f"{API}/batch/entities", json=[player(1)])
    await client.post(f"{API}/batch/events", json=[deposit(1, eventId="tx-1")])
    before = await scrape(client)
    # tx-1 twice more (one stored event, two records) and a new event.
    again = [deposit(1, eventId="tx-1"), deposit(1, eventId="tx-2"), deposit(1, eventId="tx-1")]
    answer = await client.post(f"{API}/batch/events", json=again)

    assert answer.json()["data"]["succeeded"] == 3
    after = await scrape(client)
    labels = {"collection": "events", "tenant": "op2"}
    for outcome, count in (("unchanged", 2), ("created", 1), ("failed", 0)):
        assert records_counted(before, after, labels, outcome) == count, (outcome, count)


async def test_file_jobs_count_their_lines_and_show_the_queue(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    # The last line repeats the second's record: both lines count, as their record's outcome.
    await upload(client, "a.ndjson", instance(1), instance(2), b"oops", instance(2))

    await bulk(client, "a.ndjson")
    loaded = await scrape(client)
    stored = {"_version": 1}
    lines = (instance(1, **stored), instance(2, **stored), b"oops", instance(2, **stored))
    await upload(client, "b.ndjson", *lines)
    await bulk(client, "b.ndjson")

    after = await scrape(client)
    assert value(after, "loadbay_file_lines_total") - value(before, "loadbay_file_lines_total") == 8
    labels = {"collection": "instances", "tenant": "default"}
    for (earlier, later), outcome, count in (
        ((before, loaded), "created", 3),
        ((before, loaded), "updated", 0),
        ((loaded, after), "created", 0),
        ((loaded, after), "updated", 3),
        ((before, after), "failed", 2),
    ):
        assert records_counted(earlier, later, labels, outcome) == count, outcome
    assert value(after, "loadbay_file_jobs", status="completed") >= 1
    assert value(after, "loadbay_file_jobs", status="processing") == 0


# In a process of its own: prometheus_client chooses, when imported, whether its values live
# in the process or in files shared between processes (as under `loadbay serve`).
_OBSERVED_AT_ONCE = """
import os
from prometheus_client import CollectorRegistry, Histogram, multiprocess
from loadbay import metrics
shared = "PROMETHEUS_MULTIPROC_DIR" in os.environ
registry = CollectorRegistry()
made_in = None if shared else registry
buckets = (0.5, 1, 2)
one_by_one = Histogram("one_by_one", "each observed", buckets=buckets, registry=made_in)
at_once = Histogram("at_once", "observed together", buckets=buckets, registry=made_in)
# On a bound, between bounds, past the last, at zero.
for amount, times in ((0.5, 3), (0.7, 2), (5.0, 1), (0.0, 4)):
    for _ in range(times):
        one_by_one.observe(amount)
    metrics.observe_times(at_once, amount, times)
if shared:
    multiprocess.MultiProcessCollector(registry)
families = {f.name: f for f in registry.collect()}
def samples(name):
    counted = (s for s in families[name].samples if not s.name.endswith("_created"))
    return {(s.name[len(name):], s.labels.get("le")): s.value for s in counted}
assert samples("at_once") == samples("one_by_one"), (samples("at_once"), samples("one_by_one"))
assert samples("at_once")["_count", None] == 10
"""


@pytest.mark.parametrize("shared", [False, True], ids=["one process", "processes sharing"])
def test_a_value_observed_many_times_at_once_counts_as_each_observation(
    shared: bool, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if shared:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _OBSERVED_AT_ONCE], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert bool(list(tmp_path.glob("histogram_*.db"))) == shared  # where the values went


async def test_a_metrics_token_keeps_other_scrapers_out(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(metrics_token="s3cret-scrape"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            anonymous = await client.get("/metrics")
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            basic = await client.get("/metrics", headers={"Authorization": "Basic s3cret"})
            key = await app.state.api_keys.create("default", frozenset({"admin"}))
            api_key = await client.get(
                "/metrics", headers={"Authorization": f"Bearer {key.secret}"}
            )
            not_ascii = await client.get(
                "/metrics", headers={"Authorization": "Bearer s3cr\xe9t".encode("latin-1")}
            )
            scraper = await client.get(
                "/metrics", headers={"Authorization": "Bearer s3cret-scrape"}
            )

    refused = (anonymous, wrong, basic, api_key, not_ascii)
    assert [r.status_code for r in refused] == [401] * 5
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert scraper.status_code == 200
    assert "loadbay_http_requests_total" in scraper.text


async def test_the_database_pool_is_shown(started: FastAPI, client: httpx.AsyncClient) -> None:
    shown = await scrape(client)

    assert ("loadbay_db_connections_in_use", frozenset()) in shown
    assert value(shown, "loadbay_db_pool_capacity") == started.state.db.pool_capacity > 0


def test_connections_in_use_are_counted_through_failed_reconnects_and_detaches() -> None:
    database_down = False

    def connect() -> sqlite3.Connection:
        if database_down:
            raise sqlite3.OperationalError("the database is down")
        return sqlite3.connect(":memory:")

    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=2)
    metrics.watch_pool(engine, 4)

    def in_use() -> float:
        return REGISTRY.get_sample_value("loadbay_db_connections_in_use") or 0.0

    before = in_use()
    first, second = engine.connect(), engine.connect()
    both = in_use() - before
    first.invalidate()  # pooled, it must reconnect at its next checkout
    first.close()
    one = in_use() - before
    second.invalidate()
    second.close()
    database_down = True
    for _ in range(3):
        with pytest.raises(OperationalError):
            engine.connect().close()
    database_down = False
    after_the_outage = in_use() - before
    detached = engine.connect()
    detached.detach()
    detached.close()
    engine.dispose()

    assert (both, one, after_the_outage) == (2, 1, 0)
    assert in_use() == before
    assert REGISTRY.get_sample_value("loadbay_db_pool_capacity") == 4


def test_a_stopped_worker_leaves_the_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, metrics.MULTIPROCESS_DIR: str(tmp_path)}
    worker = (
        "from loadbay import metrics; metrics.DB_POOL_CAPACITY.set({}); import time; time.sleep({})"
    )
    stopped = subprocess.run([sys.executable, "-c", worker.format(10, 0)], env=env, check=True)
    running = subprocess.Popen([sys.executable, "-c", worker.format(4, 60)], env=env)
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("gauge_livesum_*.db"))) < 2:
            assert time.monotonic() < deadline, "the running worker wrote no gauge"
            time.sleep(0.05)
        monkeypatch.setenv(metrics.MULTIPROCESS_DIR, str(tmp_path))
        shown = parse(metrics.render().decode())
    finally:
        running.kill()
        running.wait()

    assert stopped.returncode == 0
    assert value(shown, "loadbay_db_pool_capacity") == 4


async def test_the_relay_counts_what_it_published_and_how_late(
    make_settings: Callable[..., Settings],
) -> None:
    url = broker_url("redis")
    app = create_app(make_settings(events_url=url, **unique_names()))
    async with app.router.lifespan_context(app):
        client = await client_for(app)
        before = await scrape(client)
        await client.post(BATCHES, json=batch(*(activity(n) for n in range(5))))
        await wait_until_published(app)
        after = await scrape(client)
        await client.aclose()

    redis = {"broker": "redis"}
    published = "loadbay_relay_published_events_total"
    assert value(after, published, **redis) - value(before, published, **redis) == 5
    delays = "loadbay_relay_delay_seconds_count"
    assert value(after, delays, **redis) - value(before, delays, **redis) == 5
    # Every event was acknowledged within a minute of its commit.
    within = ("loadbay_relay_delay_seconds_bucket", frozenset({**redis, "le": "60.0"}.items()))
    assert after[within] - before.get(within, 0.0) == 5
    batches = "loadbay_relay_publish_seconds_count"
    assert value(after, batches, **redis) > value(before, batches, **redis)
    assert value(after, "loadbay_outbox_pending_events") == 0


async def test_a_broker_that_cannot_be_reached_counts_as_relay_errors(
    make_settings: Callable[..., Settings],
) -> None:
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    app = create_app(make_settings(events_url=url, **unique_names()))
    async with app.router.lifespan_context(app):
        client = await client_for(app)
        before = await scrape(client)
        await client.post(BATCHES, json=batch(activity(1)))
        errors = "loadbay_relay_errors_total"
        for _ in range(50):
            after = await scrape(client)
            if value(after, errors, broker="redis") > value(before, errors, broker="redis"):
                break
            await asyncio.sleep(0.1)
        await client.aclose()

    assert value(after, errors, broker="redis") > value(before, errors, broker="redis")
    assert value(after, "loadbay_outbox_pending_events") == 1


@pytest.mark.slow
def test_several_workers_answer_with_the_sum_of_all_workers(
    tmp_path: Path, database_url: str
) -> None:
    server = start_server(loadbay_env(tmp_path, database_url), tmp_path / "s.log", workers=2)
    health = {"method": "GET", "route": "/healthz", "status": "200"}
    name = "loadbay_http_requests_total"
    try:
        first = value(parse(httpx.get(f"{server.url}/metrics").text), name, **health)
        # A new connection per request: the kernel spreads them over both workers, and each
        # scrape is answered by either. Every answer must carry the sum of both.
        for _ in range(30):
            assert httpx.get(f"{server.url}/healthz").status_code == 200
        seen = {
            value(parse(httpx.get(f"{server.url}/metrics").text), name, **health) for _ in range(10)
        }
    finally:
        server.stop()

    assert seen == {first + 30}
