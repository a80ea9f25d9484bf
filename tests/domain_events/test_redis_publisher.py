"""The pipelined Redis streams publisher: a batch appended in order, its replies read without
a timer each, and a Redis that never answers given up on rather than waited for."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadbay.domain_events import brokers
from loadbay.domain_events.brokers import RedisPublisher
from loadbay.domain_events.publishing import Message, PartialPublish
from tests.domain_events.broker_readers import REDIS_URL, reachable, redis_reader, unique_names


@pytest.mark.skipif(not reachable(REDIS_URL), reason=f"Redis not reachable at {REDIS_URL}")
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


async def test_a_redis_that_accepts_and_never_answers_fails_the_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(brokers, "TIMEOUT_SECONDS", 0.3)
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    publisher = RedisPublisher(f"redis://127.0.0.1:{port}")
    started = time.monotonic()
    try:
        # Without a timeout of its own the connect would wait for ever: cut it at 5 s here.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(publisher.connect(), 5)
        assert time.monotonic() - started < 2
        assert publisher._redis is None
    finally:
        await publisher.close()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.skipif(not reachable(REDIS_URL), reason=f"Redis not reachable at {REDIS_URL}")
async def test_an_error_reply_fails_the_batch_from_it_and_the_next_batch_goes_through() -> None:
    names = unique_names()
    stream, not_a_stream = f"{names['events_env']}.t.entities", f"{names['events_env']}-string"
    batch = [Message(stream, f"k{n}", b"{}", f"event-{n}") for n in range(5)]
    batch[3] = Message(not_a_stream, "k3", b"{}", "event-3")
    publisher = RedisPublisher(REDIS_URL)
    await publisher.connect()
    assert publisher._redis is not None
    try:
        await publisher._redis.set(not_a_stream, "a string: XADD to it is refused")
        with pytest.raises(PartialPublish) as refused:
            await publisher.publish_all(batch)
        await publisher.publish_all([Message(stream, "k5", b"{}", "event-5")])
        async with redis_reader(REDIS_URL, names) as read:
            received = await read(6)
    finally:
        await publisher._redis.delete(not_a_stream)
        await publisher.close()

    assert refused.value.acknowledged == 3
    assert "WRONGTYPE" in str(refused.value.cause)
    # Pipelined: Redis ran the XADD after the refused one too; the relay resends it (at
    # least once), and the next batch finds the connection in order.
    assert [key for key, _ in received] == ["k0", "k1", "k2", "k4", "k5"]


@pytest.mark.skipif(not reachable(REDIS_URL), reason=f"Redis not reachable at {REDIS_URL}")
async def test_a_batch_redis_does_not_answer_in_time_fails_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(brokers, "TIMEOUT_SECONDS", 0.3)
    names = unique_names()
    batch = [Message(f"{names['events_env']}.t.e", f"k{n}", b"{}", f"e{n}") for n in range(3)]
    publisher = RedisPublisher(REDIS_URL)
    await publisher.connect()
    assert publisher._redis is not None
    try:
        await publisher._redis.execute_command("CLIENT", "PAUSE", 1500, "WRITE")
        with pytest.raises(PartialPublish) as late:
            await publisher.publish_all(batch)
        await asyncio.sleep(1.5)
        await publisher.publish_all(batch)
        async with redis_reader(REDIS_URL, names) as read:
            received = await read(3)
    finally:
        await publisher.close()

    assert late.value.acknowledged == 0
    assert isinstance(late.value.cause, TimeoutError)
    assert [key for key, _ in received][-3:] == ["k0", "k1", "k2"]
