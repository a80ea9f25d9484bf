"""A batch the broker acknowledged only in part: its head is marked, the rest resent in order.

The broker here is a stand-in that fails on the nth message, since a real broker cannot be
made to drop one acknowledgement on demand; tests/events/test_relay.py covers real brokers.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI

from loadbay.events.brokers import Message, PartialPublish
from loadbay.events.relay import Relay
from tests.factories import BATCHES, activity, batch


class FailsOnce:
    """Acknowledges messages until the `fail_at`-th of its first batch, then everything."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.received: list[list[str]] = []

    async def connect(self) -> None:
        return None

    async def publish_all(self, messages: Sequence[Message]) -> None:
        self.received.append([m.event_id for m in messages])
        if len(self.received) == 1:
            raise PartialPublish(self.fail_at, ConnectionError("ack lost"))

    async def close(self) -> None:
        return None


async def test_the_unacknowledged_tail_is_resent_in_order(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    await client.post(BATCHES, json=batch(*(activity(n) for n in range(5))))
    broker = FailsOnce(fail_at=3)
    relay = Relay(started.state.db, broker, started.state.settings)

    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    resent = await relay.publish_pending()

    first, second = broker.received
    assert len(first) == 5
    assert second == first[3:]
    assert resent == 2
    assert await relay.publish_pending() == 0
