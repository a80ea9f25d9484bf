"""Publishers, one per broker, each on that broker's own asyncio client.

Every publisher waits for the broker's acknowledgement before `publish` returns, so that an
event is marked published only once the broker has it. Clients are imported when used: a
node loads only its own broker's.
"""

from __future__ import annotations

import re
from typing import Protocol
from urllib.parse import urlsplit

from loadbay.config import Settings

TIMEOUT_SECONDS = 5.0


class Publisher(Protocol):
    async def connect(self) -> None:
        """Connect if not connected; raise if the broker cannot be reached."""
        ...

    async def publish(self, subject: str, key: str, value: bytes, event_id: str) -> None: ...

    async def close(self) -> None: ...


def publisher_for(settings: Settings) -> Publisher:
    url = settings.events_url or ""
    scheme = urlsplit(url).scheme
    if scheme in ("nats", "tls"):
        return NatsPublisher(url, settings.events_nats_stream, stream_subjects(settings))
    if scheme in ("redis", "rediss"):
        return RedisPublisher(url)
    if scheme in ("amqp", "amqps"):
        return AmqpPublisher(url, settings.events_amqp_exchange)
    if scheme == "kafka":
        return KafkaPublisher(urlsplit(url).netloc)
    raise ValueError(
        f"LOADBAY_EVENTS_URL: unsupported broker {scheme!r} (nats, redis, amqp, kafka)"
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


class NatsPublisher:
    def __init__(self, url: str, stream: str, subjects: list[str]) -> None:
        self._url, self._stream, self._subjects = url, stream, subjects
        self._nc = None
        self._js = None

    async def connect(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        if self._nc is not None and self._nc.is_connected:
            return
        await self.close()
        self._nc = await nats.connect(
            self._url, connect_timeout=TIMEOUT_SECONDS, allow_reconnect=False
        )
        self._js = self._nc.jetstream(timeout=TIMEOUT_SECONDS)
        try:
            await self._js.stream_info(self._stream)
        except NotFoundError:
            await self._js.add_stream(name=self._stream, subjects=self._subjects)

    async def publish(self, subject: str, key: str, value: bytes, event_id: str) -> None:
        assert self._js is not None
        # JetStream drops a second message with the same Msg-Id: redeliveries cost nothing.
        headers = {"Nats-Msg-Id": event_id, "Loadbay-Key": key}
        await self._js.publish(subject, value, headers=headers, timeout=TIMEOUT_SECONDS)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = self._js = None


class RedisPublisher:
    """Appends to a Redis stream named by the subject."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._redis = None

    async def connect(self) -> None:
        from redis.asyncio import Redis

        if self._redis is not None:
            return
        client = Redis.from_url(self._url, socket_timeout=TIMEOUT_SECONDS)
        try:
            await client.ping()
        except Exception:
            await client.aclose()
            raise
        self._redis = client

    async def publish(self, subject: str, key: str, value: bytes, event_id: str) -> None:
        assert self._redis is not None
        await self._redis.xadd(subject, {"key": key, "event_id": event_id, "value": value})

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        self._redis = None


class AmqpPublisher:
    """Publishes to a durable topic exchange with publisher confirms; routing key = subject."""

    def __init__(self, url: str, exchange: str) -> None:
        self._url, self._exchange_name = url, exchange
        self._connection = None
        self._exchange = None

    async def connect(self) -> None:
        import aio_pika

        if self._connection is not None and not self._connection.is_closed:
            return
        await self.close()
        self._connection = await aio_pika.connect(self._url, timeout=TIMEOUT_SECONDS)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def publish(self, subject: str, key: str, value: bytes, event_id: str) -> None:
        import aio_pika

        assert self._exchange is not None
        message = aio_pika.Message(
            value,
            message_id=event_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={"key": key},
        )
        await self._exchange.publish(message, routing_key=subject, timeout=TIMEOUT_SECONDS)

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection = self._exchange = None


class KafkaPublisher:
    """acks=all; topic = subject, message key = record key.

    Sends are awaited one by one, so order holds without the idempotent producer, which
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

    async def publish(self, subject: str, key: str, value: bytes, event_id: str) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(
            subject, value, key=key.encode(), headers=[("event_id", event_id.encode())]
        )

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self._producer = None
