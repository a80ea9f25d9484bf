"""The batch AMQP publisher against a real RabbitMQ: what a consumer receives, confirms
counted per message, and refusals said in RabbitMQ's words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from loadbay.domain_events.amqp import AmqpAddress, AmqpPublisher, _Confirms
from loadbay.domain_events.publishing import Message, PartialPublish
from tests.domain_events.broker_readers import AMQP_URL, reachable, unique_names

pytestmark = pytest.mark.skipif(
    not reachable(AMQP_URL), reason=f"RabbitMQ not reachable at {AMQP_URL}"
)


@pytest.fixture
async def exchange() -> AsyncIterator[tuple[str, Any]]:
    """A topic exchange of this test's own, and a channel of the reading side."""
    name = unique_names()["events_amqp_exchange"]
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    try:
        yield name, channel
    finally:
        await channel.exchange_delete(name)
        await connection.close()


async def bound_queue(channel: Any, exchange: str, **arguments: Any) -> Any:
    queue = await channel.declare_queue(exclusive=True, arguments=arguments or None)
    await queue.bind(exchange, routing_key="#")
    return queue


async def received(queue: Any) -> list[Any]:
    messages = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        messages.append(message)
    return messages


async def test_consumers_get_each_event_whole_with_its_id_key_and_subject(
    exchange: tuple[str, Any],
) -> None:
    name, channel = exchange
    queue = await bound_queue(channel, name)
    # One value spans several frames (RabbitMQ's frames carry 128 KiB at most).
    big = b'{"blob":"' + b"x" * 300_000 + b'"}'
    batch = [
        Message("env.t1.entities", "p-1", b'{"n":1}', "event-1"),
        Message("env.t2.instances", "clé:2", big, "event-2"),
        Message("env.t1.entities", "p-3", b'{"n":3}', "event-3"),
    ]
    publisher = AmqpPublisher(AMQP_URL, name)
    await publisher.connect()
    try:
        await publisher.publish_all(batch)
    finally:
        await publisher.close()

    messages = await received(queue)
    assert [(m.routing_key, m.headers, m.message_id, m.body) for m in messages] == [
        (b.subject, {"key": b.key}, b.event_id, b.value) for b in batch
    ]
    assert {(m.content_type, m.delivery_mode) for m in messages} == {
        ("application/json", aio_pika.DeliveryMode.PERSISTENT)
    }


async def test_many_batches_on_one_connection_arrive_in_order(exchange: tuple[str, Any]) -> None:
    name, channel = exchange
    queue = await bound_queue(channel, name)
    publisher = AmqpPublisher(AMQP_URL, name)
    await publisher.connect()
    try:
        for first in range(0, 3000, 1000):
            await publisher.publish_all(
                [
                    Message("env.t.e", f"k{n}", b"%d" % n, f"e{n}")
                    for n in range(first, first + 1000)
                ]
            )
    finally:
        await publisher.close()

    assert [int(m.body) for m in await received(queue)] == list(range(3000))


async def test_a_message_refused_by_a_full_queue_fails_the_batch_from_it(
    exchange: tuple[str, Any],
) -> None:
    name, channel = exchange
    # A queue that takes three messages and refuses the rest: RabbitMQ nacks them.
    await bound_queue(channel, name, **{"x-max-length": 3, "x-overflow": "reject-publish"})
    publisher = AmqpPublisher(AMQP_URL, name)
    await publisher.connect()
    try:
        with pytest.raises(PartialPublish) as refused:
            await publisher.publish_all(
                [Message("env.t.e", f"k{n}", b"{}", f"e{n}") for n in range(5)]
            )
    finally:
        await publisher.close()

    assert refused.value.acknowledged == 3
    assert "refused" in str(refused.value.cause)


async def test_a_channel_closed_by_the_broker_fails_the_batch_and_a_reconnect_recovers(
    exchange: tuple[str, Any],
) -> None:
    name, channel = exchange
    publisher = AmqpPublisher(AMQP_URL, name)
    await publisher.connect()
    try:
        await channel.exchange_delete(name)  # publishing to it now closes the channel: 404
        with pytest.raises(PartialPublish) as failed:
            await publisher.publish_all([Message("env.t.e", "k", b"{}", "e1")])
        await publisher.connect()  # declares the exchange again
        queue = await bound_queue(channel, name)
        await publisher.publish_all([Message("env.t.e", "k", b"{}", "e2")])
    finally:
        await publisher.close()

    assert failed.value.acknowledged == 0
    assert "404" in str(failed.value.cause)
    assert [m.message_id for m in await received(queue)] == ["e2"]


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("amqp://guest:wrong@127.0.0.1:5672/", "403 ACCESS_REFUSED"),
        ("amqp://guest:guest@127.0.0.1:5672/no-such-vhost", "530 NOT_ALLOWED"),
    ],
)
async def test_refused_credentials_or_vhost_are_said_in_rabbitmqs_words(
    url: str, refusal: str
) -> None:
    publisher = AmqpPublisher(url, unique_names()["events_amqp_exchange"])
    with pytest.raises(Exception, match=refusal):
        await publisher.connect()
    await publisher.close()


async def test_an_exchange_of_another_type_is_refused_at_connect(
    exchange: tuple[str, Any],
) -> None:
    name, channel = exchange
    await channel.exchange_delete(name)
    await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)
    publisher = AmqpPublisher(AMQP_URL, name)
    with pytest.raises(Exception, match="406 PRECONDITION_FAILED"):
        await publisher.connect()
    await publisher.close()


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("amqp://guest:guest@rabbit:5673/", ("rabbit", 5673, "guest", "guest", "/", False)),
        ("amqp://rabbit", ("rabbit", 5672, "guest", "guest", "/", False)),
        ("amqp://u:p%40ss@rabbit/%2F", ("rabbit", 5672, "u", "p@ss", "/", False)),
        ("amqps://u:p@rabbit/prod", ("rabbit", 5671, "u", "p", "prod", True)),
    ],
)
def test_the_url_is_read_as_rabbitmq_documents_it(url: str, address: tuple[Any, ...]) -> None:
    parsed = AmqpAddress.from_url(url)
    assert (
        parsed.host,
        parsed.port,
        parsed.user,
        parsed.password,
        parsed.vhost,
        parsed.tls,
    ) == address


async def test_an_event_with_an_empty_body_goes_through(exchange: tuple[str, Any]) -> None:
    name, channel = exchange
    queue = await bound_queue(channel, name)
    publisher = AmqpPublisher(AMQP_URL, name)
    await publisher.connect()
    try:
        await publisher.publish_all([Message("env.t.e", "k", b"", "e1")])
        await publisher.publish_all([Message("env.t.e", "k", b"{}", "e2")])
    finally:
        await publisher.close()

    assert [(m.message_id, m.body) for m in await received(queue)] == [("e1", b""), ("e2", b"{}")]


@pytest.mark.parametrize(
    ("confirms", "in_order"),
    [
        # (delivery tag, multiple, nack): deliveries 1-10 of a batch
        ([(3, True, False), (4, True, True), (8, True, False)], 3),
        ([(2, False, False), (1, False, False), (4, True, True)], 2),
        ([(5, False, True), (10, True, False)], 4),
        ([(10, True, False)], 10),
    ],
)
async def test_a_nacked_delivery_is_never_counted_by_a_later_multiple_ack(
    confirms: list[tuple[int, bool, bool]], in_order: int
) -> None:
    batch = _Confirms(first=1, count=10)
    for tag, multiple, nack in confirms:
        batch.confirm(tag, multiple=multiple, refused=nack)

    assert batch.in_order() == in_order
    assert batch.complete.done()
