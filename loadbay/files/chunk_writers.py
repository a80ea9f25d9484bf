"""Chunks of one file written at once, each by a task of its own, in an order that is safe.

At most `limit` chunks are written at a time. A chunk that touches anything a chunk still
being written touches (a record, a record it links, a unique value) starts only once that one
is done: chunks may commit out of order, but never two that share something.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Write:
    task: asyncio.Task[None]
    touched: set[Hashable]


class ChunkWriters:
    def __init__(self, limit: int, grace_seconds: float) -> None:
        self._limit = limit
        self._grace_seconds = grace_seconds
        self._running: list[_Write] = []

    async def start(
        self, touched: set[Hashable], write: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Start `write()` once it is safe and there is room; raises an earlier write's failure."""
        await _wait([w.task for w in self._running if not w.touched.isdisjoint(touched)])
        self._settle()
        while len(self._running) >= self._limit:
            await _wait([w.task for w in self._running], asyncio.FIRST_COMPLETED)
            self._settle()
        self._running.append(_Write(asyncio.create_task(write()), touched))

    async def finish(self) -> None:
        """Wait for every write started; raises the first failure."""
        await _wait([w.task for w in self._running])
        self._settle()

    async def abandon(self) -> list[BaseException]:
        """Stopping or failing: let the writes still running finish; their failures.

        A chunk takes a second or less, and it is whole: better to let it commit than to
        cancel it mid-statement (a SIGTERM on SQLite once had the release that follows wait
        out the 30 s busy timeout, the cancelled chunk's connection apparently still holding
        the write lock). Past the grace, they are cut.
        """
        tasks, self._running = [w.task for w in self._running], []
        running = [task for task in tasks if not task.done()]
        if running:
            await asyncio.wait(running, timeout=self._grace_seconds)
            for task in running:
                task.cancel()  # a no-op on those done
            await asyncio.wait(running)
        return [e for task in tasks if not task.cancelled() and (e := task.exception())]

    def _settle(self) -> None:
        """Forget the writes done; raise the first failure among them."""
        for write in self._running:
            if write.task.done():
                write.task.result()
        self._running = [w for w in self._running if not w.task.done()]


async def _wait(tasks: list[asyncio.Task[None]], return_when: str = asyncio.ALL_COMPLETED) -> None:
    """`asyncio.wait`, which unlike awaiting a task does not cancel it when this is cancelled."""
    if tasks:
        await asyncio.wait(tasks, return_when=return_when)
