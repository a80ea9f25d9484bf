"""A batch the broker acknowledged only in part: its head is marked, the rest resent in order.

The broker here is a stand-in that fails on the nth message, since a real broker cannot be
made to drop one acknowledgement on demand; tests/domain_events/test_relay.py covers real brokers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI

from loadbay.domain_events.publishing import Message, PartialPublish
from loadbay.domain_events.relay import Relay
from tests.domain_events.helpers import feed
from tests.factories import BATCHES, activity, batch


class StandInBroker:
    """Records the event ids of every batch it is given; always connected."""

    def __init__(self) -> None:
        self.received: list[list[str]] = []

    async def connect(self) -> None:
        return None

    async def publish_all(self, messages: Sequence[Message]) -> None:
        self.received.append([m.event_id for m in messages])

    async def close(self) -> None:
        return None


class FailsOnce(StandInBroker):
    """Acknowledges messages until the `fail_at`-th of its `batch`-th batch (the first
    unless said), then everything."""

    def __init__(self, fail_at: int, batch: int = 1) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.failing_batch = batch

    async def publish_all(self, messages: Sequence[Message]) -> None:
        await super().publish_all(messages)
        if len(self.received) == self.failing_batch:
            raise PartialPublish(self.fail_at, ConnectionError("ack lost"))


async def test_the_unacknowledged_tail_is_resent_in_order(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    await client.post(BATCHES, json=batch(*(activity(n) for n in range(5))))
    broker = FailsOnce(fail_at=3)
    relay = Relay(started.state.db, broker, started.state.settings)

    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    pending = (await client.get("/metrics")).text
    resent = await relay.publish_pending()

    assert "loadbay_outbox_pending_events 2" in pending
    first, second = broker.received
    assert len(first) == 5
    assert second == first[3:]
    assert resent == 2
    assert await relay.publish_pending() == 0


async def one_write_each(client: httpx.AsyncClient, activities: int) -> None:
    """Activities written one a request: on every database, an outbox row each."""
    for n in range(activities):
        assert (await client.post(BATCHES, json=batch(activity(n)))).status_code == 201


async def test_a_write_larger_than_a_batch_goes_out_whole_and_in_order(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    """PostgreSQL keeps a write's events in one outbox row, claimed whole; SQLite a row each."""
    await client.post(BATCHES, json=batch(*(activity(n) for n in range(10, 15))))
    await one_write_each(client, 3)
    ids = [event["eventId"] for event in await feed(client)]
    settings = started.state.settings.model_copy(update={"relay_batch_size": 2})
    broker = StandInBroker()

    published = await Relay(started.state.db, broker, settings).publish_pending()

    assert published == 8
    assert [event_id for sent in broker.received for event_id in sent] == ids
    assert all(len(sent) <= 5 for sent in broker.received)


async def test_the_resend_of_a_row_acknowledged_in_part_reaches_every_later_event(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    """PostgreSQL: the resend claims the rest of a 5-event row and rows after it until the
    batch would be full counting the row's published head; none of the rows it leaves out
    may be taken as claimed (and so never published)."""
    await client.post(BATCHES, json=batch(*(activity(n) for n in range(10, 15))))
    await one_write_each(client, 3)
    ids = [event["eventId"] for event in await feed(client)]
    settings = started.state.settings.model_copy(update={"relay_batch_size": 5})
    broker = FailsOnce(fail_at=3)
    relay = Relay(started.state.db, broker, settings)

    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    resent = await relay.publish_pending()

    sent = [event_id for batch_ in broker.received for event_id in batch_]
    assert len(ids) == 8
    assert sent[:3] + sent[len(broker.received[0]) :] == ids
    assert resent == 5


async def test_the_batch_claimed_behind_a_failed_one_waits_for_the_resend(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    await one_write_each(client, 7)
    ids = [event["eventId"] for event in await feed(client)]
    settings = started.state.settings.model_copy(update={"relay_batch_size": 2})
    broker = FailsOnce(fail_at=1, batch=2)
    relay = Relay(started.state.db, broker, settings)

    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    resent = await relay.publish_pending()

    # Batches of two; the second is acknowledged for its first event only. The third,
    # claimed meanwhile, is not sent: the next round starts from the unacknowledged event.
    assert broker.received == [ids[0:2], ids[2:4], ids[3:5], ids[5:7]]
    assert resent == 4
    assert await relay.publish_pending() == 0


class Slow(StandInBroker):
    """Acknowledges every message, a little later."""

    def __init__(self) -> None:
        super().__init__()
        self.publishing = asyncio.Event()

    async def publish_all(self, messages: Sequence[Message]) -> None:
        await super().publish_all(messages)
        self.publishing.set()
        await asyncio.sleep(0.3)


async def test_a_stopped_relay_finishes_the_batch_it_is_sending_and_no_other(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    await one_write_each(client, 6)
    ids = [event["eventId"] for event in await feed(client)]
    settings = started.state.settings.model_copy(update={"relay_batch_size": 2})
    broker = Slow()
    relay = Relay(started.state.db, broker, settings)

    draining = asyncio.create_task(relay.publish_pending())
    await broker.publishing.wait()
    draining.cancel()
    with pytest.raises(asyncio.CancelledError):
        await draining
    sent_before_the_stop = list(broker.received)
    resent = await relay.publish_pending()

    # The batch on its way out was acknowledged and marked; the one claimed behind it was
    # let go unsent, and goes out with the rest next time, once.
    assert sent_before_the_stop == [ids[0:2]]
    assert broker.received == [ids[0:2], ids[2:4], ids[4:6]]
    assert resent == 4
