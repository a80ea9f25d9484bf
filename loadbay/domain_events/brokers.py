"""Publishers, one per broker: NATS JetStream and RabbitMQ on protocol code of Loadbay's own
(jetstream.py, amqp.py: their clients' per-message objects held the relay back), Redis on
redis-py with hiredis packing the commands, Kafka on aiokafka.

A publisher sends a batch of events in order with many in flight — pipelined, not one round
trip per event — and returns once the broker has acknowledged them all; if it fails part-way
it says how many of the first events were acknowledged, and only those are marked published.
Clients are imported when used: a node loads only its own broker's.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from loadbay.config import Settings
from loadbay.domain_events.publishing import TIMEOUT_SECONDS, Message, PartialPublish, Publisher


async def _acknowledged_in_order(acks: Sequence[Awaitable[Any]]) -> None:
    """Await acknowledgements of sends made in order; raise at the first that failed or did
    not come within TIMEOUT_SECONDS."""
    futures = [asyncio.ensure_future(ack) for ack in acks]
    if not futures:
        return
    _, late = await asyncio.wait(futures, timeout=TIMEOUT_SECONDS)
    for future in late:
        future.cancel()
    # Every outcome looked at: a reset connection fails every message of the batch, and
    # asyncio would log each error never retrieved (thousands of tracebacks).
    errors = [
        TimeoutError("no acknowledgement from the broker") if future in late else future.exception()
        for future in futures
    ]
    for count, error in enumerate(errors):
        if error is not None:
            raise PartialPublish(count, error)


async def _queued_then_acknowledged(
    messages: Sequence[Message], queue: Callable[[Message], Awaitable[Awaitable[Any]]]
) -> None:
    """Queue every message in order (each `queue` call returns its acknowledgement), then
    await the acknowledgements; if queueing fails part-way, report the acknowledged head."""
    acks: list[Awaitable[Any]] = []
    for count, message in enumerate(messages):
        try:
            acks.append(await queue(message))
        except Exception as error:
            try:
                await _acknowledged_in_order(acks)
            except PartialPublish as earlier:
                raise earlier from error
            raise PartialPublish(count, error) from error
    await _acknowledged_in_order(acks)


_BROKER_NAMES = {
    "nats": "nats",
    "tls": "nats",
    "redis": "redis",
    "rediss": "redis",
    "amqp": "amqp",
    "amqps": "amqp",
    "kafka": "kafka",
}


def broker_name(url: str) -> str:
    """The kind of broker a LOADBAY_EVENTS_URL names, as metrics label it."""
    return _BROKER_NAMES.get(urlsplit(url).scheme, "unknown")


def publisher_for(settings: Settings) -> Publisher:
    url = settings.events_url or ""
    broker = broker_name(url)
    if broker == "nats":
        from loadbay.domain_events.jetstream import NatsPublisher

        return NatsPublisher(url, settings.events_nats_stream, stream_subjects(settings))
    if broker == "redis":
        return RedisPublisher(url)
    if broker == "amqp":
        from loadbay.domain_events.amqp import AmqpPublisher

        return AmqpPublisher(url, settings.events_amqp_exchange)
    if broker == "kafka":
        return KafkaPublisher(urlsplit(url).netloc)
    raise ValueError(
        f"LOADBAY_EVENTS_URL: unsupported broker {urlsplit(url).scheme!r} "
        "(nats, redis, amqp, kafka)"
    )


def _templates(settings: Settings) -> dict[str, str]:
    """Collections with a subject template of their own."""
    return {"instances": settings.events_instance_subject}


def subject_for(settings: Settings, tenant: str, collection: str) -> str:
    template = _templates(settings).get(collection, settings.events_subject)
    return template.format(env=settings.events_env, tenant=tenant, collection=collection)


def stream_subjects(settings: Settings) -> list[str]:
    """The JetStream subjects that cover every subject the templates can produce."""
    templates = {settings.events_subject, *_templates(settings).values()}
    return sorted(
        {re.sub(r"\{[a-z]+\}", "*", t.replace("{env}", settings.events_env)) for t in templates}
    )


class RedisPublisher:
    """Appends to a Redis stream named by the subject."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._redis = None

    async def connect(self) -> None:
        from redis.asyncio import Redis

        if self._redis is not None:
            return
        # No timer per read: a timeout context per reply was a tenth of the relay's time, and
        # redis-py 8 sets one (5 s) unless told otherwise. What waits on Redis is timed here
        # instead: the handshake and this ping, and each batch in publish_all.
        client = Redis.from_url(
            self._url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=None
        )
        try:
            await asyncio.wait_for(client.ping(), TIMEOUT_SECONDS)
        except Exception:
            await client.aclose()
            raise
        self._redis = client

    async def publish_all(self, messages: Sequence[Message]) -> None:
        from hiredis import pack_command

        assert self._redis is not None
        # One write for the batch, packed by hiredis in C: redis-py's pipeline packs each
        # command in Python, a third of the relay's time. Redis runs the XADDs in order.
        packed = b"".join([pack_command(_xadd(m)) for m in messages])
        pool = self._redis.connection_pool
        appended = 0
        connection = None
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                # Inside the timeout: a connection made again says hello to Redis first.
                connection = await pool.get_connection()
                await connection.send_packed_command(packed)
                for _ in messages:
                    await connection.read_response()  # raises an error reply
                    appended += 1
        except BaseException as error:
            if connection is not None:
                await connection.disconnect()  # replies may be left unread: not reused
            if isinstance(error, Exception):
                raise PartialPublish(appended, error) from error
            raise
        finally:
            if connection is not None:
                await pool.release(connection)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        self._redis = None


def _xadd(m: Message) -> tuple[bytes | str, ...]:
    """The XADD of one event: its stream, an id Redis assigns, the fields consumers read."""
    return (b"XADD", m.subject, b"*", b"key", m.key, b"event_id", m.event_id, b"value", m.value)


class KafkaPublisher:
    """acks=all; topic = subject, message key = record key.

    A batch is queued in order, then its acknowledgements awaited together. aiokafka keeps
    one request in flight per broker, so order holds without the idempotent producer, which
    not every Kafka-compatible broker implements; consumers dedupe on the event id.
    """

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer = None

    async def connect(self) -> None:
        from aiokafka import AIOKafkaProducer

        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            request_timeout_ms=int(TIMEOUT_SECONDS * 1000),
        )
        try:
            await producer.start()
        except Exception:
            await producer.stop()
            raise
        self._producer = producer

    async def publish_all(self, messages: Sequence[Message]) -> None:
        producer = self._producer
        assert producer is not None

        async def queue(m: Message) -> Awaitable[Any]:
            headers = [("event_id", m.event_id.encode())]
            return await producer.send(m.subject, m.value, key=m.key.encode(), headers=headers)

        await _queued_then_acknowledged(messages, queue)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self._producer = None
