"""Background loops (event relay, file-job worker): run beside the server, stop on a signal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

Loop = Callable[[asyncio.Event], Awaitable[None]]


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


@contextlib.asynccontextmanager
async def running(loop: Loop, *, cancel: bool = False) -> AsyncIterator[None]:
    """Run `loop(stop)` as a task for the block; on exit set `stop`, and cancel it if asked."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop(stop))
    try:
        yield
    finally:
        stop.set()
        if cancel:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
