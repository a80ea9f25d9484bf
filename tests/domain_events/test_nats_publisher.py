"""The pipelined JetStream publisher against a real NATS server: acknowledgements counted
per message, and a refusal reported with how many went in before it."""

from __future__ import annotations

import pytest

from loadbay.domain_events.brokers import NatsPublisher
from loadbay.domain_events.publishing import Message, PartialPublish
from tests.domain_events.brokers import NATS_URL, nats_reader, reachable, unique_names

pytestmark = pytest.mark.skipif(not reachable(NATS_URL), reason=f"NATS not reachable at {NATS_URL}")


def messages(names: dict[str, str], count: int) -> list[Message]:
    subject = f"{names['events_env']}.t.entities"
    return [Message(subject, f"k{n}", b'{"n": %d}' % n, f"event-{n}") for n in range(count)]


async def test_a_batch_is_stored_in_order_and_a_repeat_is_dropped_by_msg_id() -> None:
    names = unique_names()
    publisher = NatsPublisher(NATS_URL, names["events_nats_stream"], [f"{names['events_env']}.>"])
    await publisher.connect()
    try:
        batch = messages(names, 300)
        await publisher.publish_all(batch)
        await publisher.publish_all(batch[:10])  # a redelivery: JetStream drops it
        async with nats_reader(NATS_URL, names) as read:
            received = await read(300)
            stream = await publisher._nc.jetstream().stream_info(names["events_nats_stream"])
    finally:
        await publisher.close()

    assert [value for _, value in received] == [{"n": n} for n in range(300)]
    assert stream.state.messages == 300


async def test_a_subject_no_stream_takes_fails_the_batch_from_its_first_message() -> None:
    names = unique_names()
    publisher = NatsPublisher(NATS_URL, names["events_nats_stream"], [f"{names['events_env']}.>"])
    await publisher.connect()
    try:
        await publisher._nc.jetstream().delete_stream(names["events_nats_stream"])
        with pytest.raises(PartialPublish) as refused:
            await publisher.publish_all(messages(names, 5))
    finally:
        await publisher.close()

    assert refused.value.acknowledged == 0
    assert "no responders" in str(refused.value.cause)
