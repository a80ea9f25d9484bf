"""What every broker's publisher shares: the message, the contract, and a part-way failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import NamedTuple, Protocol

# How long a publisher waits on its broker: to connect, and for a batch's acknowledgements.
TIMEOUT_SECONDS = 5.0


class Message(NamedTuple):
    """A tuple: the relay makes one per event (a frozen dataclass took 1 µs of it)."""

    subject: str
    key: str  # the record's natural key: a record's events stay in order under it
    value: bytes
    event_id: str


class PartialPublish(Exception):
    """The broker acknowledged only the first `acknowledged` messages of a batch."""

    def __init__(self, acknowledged: int, cause: BaseException) -> None:
        super().__init__(f"{acknowledged} acknowledged, then: {cause}")
        self.acknowledged = acknowledged
        self.cause = cause


class Publisher(Protocol):
    async def connect(self) -> None:
        """Connect if not connected; raise if the broker cannot be reached."""
        ...

    async def publish_all(self, messages: Sequence[Message]) -> None:
        """Publish in order, pipelined; raise PartialPublish unless all were acknowledged."""
        ...

    async def close(self) -> None: ...


class Acknowledgements:
    """What a broker answered for each message of one batch, by position, as it arrives:
    each is settled once, stored or refused; the batch is complete when every message is
    settled, or at the first refusal, since nothing after it counts (it is resent from
    there, in order)."""

    def __init__(self, count: int) -> None:
        self._stored: list[bool | None] = [None] * count  # None while unanswered
        self._unanswered = count
        self.refused: Exception | None = None
        self.complete: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not count:
            self.complete.set_result(None)

    def __len__(self) -> int:
        return len(self._stored)

    def settle(self, first: int, last: int, refusal: Exception | None = None) -> None:
        """Positions `first` to `last` still unanswered: stored, or refused for `refusal`."""
        for position in range(first, last + 1):
            if self._stored[position] is None:
                self._stored[position] = refusal is None
                self._unanswered -= 1
        if refusal is not None and self.refused is None:
            self.refused = refusal
        self._complete_when_settled()

    def settle_stored(self, positions: Iterable[int]) -> None:
        """These positions, where still unanswered, stored: the answers of a whole read."""
        stored = self._stored
        for position in positions:
            if stored[position] is None:
                stored[position] = True
                self._unanswered -= 1
        self._complete_when_settled()

    def _complete_when_settled(self) -> None:
        if (self._unanswered == 0 or self.refused is not None) and not self.complete.done():
            self.complete.set_result(None)

    def fail(self, error: Exception) -> None:
        """The connection broke: the batch ends as far as it was stored."""
        if not self.complete.done():
            self.complete.set_exception(error)

    def in_order(self) -> int:
        """How many messages from the first were stored, without a gap or a refusal."""
        count = 0
        for stored in self._stored:
            if stored is not True:
                break
            count += 1
        return count


class Connection(Protocol):
    """One connection of Loadbay's own protocol code (jetstream.py, amqp.py)."""

    @property
    def is_open(self) -> bool: ...

    async def publish(self, messages: Sequence[Message]) -> None: ...

    async def close(self) -> None: ...


class ConnectionPublisher:
    """A Publisher over one Connection, opened again once it broke (after a failure the
    relay closes the publisher and connects it again)."""

    def __init__(self, open_connection: Callable[[], Awaitable[Connection]]) -> None:
        self._open = open_connection
        self._connection: Connection | None = None

    async def connect(self) -> None:
        if self._connection is not None and self._connection.is_open:
            return
        await self.close()
        # One timeout for all of it: a broker that takes the connection and then stalls
        # must not hang the relay.
        async with asyncio.timeout(TIMEOUT_SECONDS):
            self._connection = await self._open()

    async def publish_all(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        assert self._connection is not None
        await self._connection.publish(messages)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = None


async def hang_up(writer: asyncio.StreamWriter) -> None:
    """Close a connection to a broker without waiting for ever on one that stopped reading:
    what is still unsent after a second is dropped (its batch has failed already)."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (TimeoutError, OSError):
        writer.transport.abort()
