"""What every broker's publisher shares: the message, the contract, and a part-way failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# How long a publisher waits on its broker: to connect, and for a batch's acknowledgements.
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Message:
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


async def hang_up(writer: asyncio.StreamWriter) -> None:
    """Close a connection to a broker without waiting for ever on one that stopped reading:
    what is still unsent after a second is dropped (its batch has failed already)."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (TimeoutError, OSError):
        writer.transport.abort()
