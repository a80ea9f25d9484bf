"""The pipelined Redis streams publisher against a real Redis: one round trip a batch, in
order, without a timer per reply."""

from __future__ import annotations

import pytest

from loadbay.events.brokers import Message, RedisPublisher
from tests.events.brokers import REDIS_URL, reachable, redis_reader, unique_names

pytestmark = pytest.mark.skipif(
    not reachable(REDIS_URL), reason=f"Redis not reachable at {REDIS_URL}"
)


async def test_a_batch_is_appended_in_order_with_replies_read_untimed() -> None:
    names = unique_names()
    subject = f"{names['events_env']}.t.entities"
    batch = [Message(subject, f"k{n}", b'{"n": %d}' % n, f"event-{n}") for n in range(500)]
    publisher = RedisPublisher(REDIS_URL)
    await publisher.connect()
    try:
        await publisher.publish_all(batch)
        # redis-py 8 puts a 5 s timer on every socket read unless told otherwise: 500 timers
        # a batch cost the relay a quarter of its events/s. publish_all times the batch once.
        assert publisher._redis is not None
        assert publisher._redis.connection_pool.connection_kwargs["socket_timeout"] is None
        async with redis_reader(REDIS_URL, names) as read:
            received = await read(500)
    finally:
        await publisher.close()

    assert received == [(f"k{n}", {"n": n}) for n in range(500)]
