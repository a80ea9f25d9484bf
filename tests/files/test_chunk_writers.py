"""ChunkWriters: chunks sharing nothing overlap; a chunk sharing something waits its turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from loadbay.files.chunk_writers import ChunkWriters


class Log:
    """Chunks' starts and ends, in the order they happened."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.running = 0
        self.most_running = 0

    def chunk(
        self, name: str, release: asyncio.Event, fail: BaseException | None = None
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        async def write() -> None:
            self.events.append(f"start {name}")
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                await release.wait()
                if fail is not None:
                    raise fail
            finally:
                self.running -= 1
            self.events.append(f"end {name}")

        return write


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_chunks_sharing_nothing_run_at_once_and_may_end_out_of_order() -> None:
    log, writers = Log(), ChunkWriters(limit=3, grace_seconds=5)
    first, second = asyncio.Event(), asyncio.Event()

    await writers.start({("a",)}, log.chunk("first", first))
    await writers.start({("b",)}, log.chunk("second", second))
    second.set()
    await settle()
    first.set()
    await writers.finish()

    assert log.events == ["start first", "start second", "end second", "end first"]


async def test_a_chunk_sharing_a_key_starts_only_after_the_chunk_holding_it_ends() -> None:
    log, writers = Log(), ChunkWriters(limit=3, grace_seconds=5)
    first, other, shared = asyncio.Event(), asyncio.Event(), asyncio.Event()
    shared.set()
    await writers.start({("a",), ("hrid", "x")}, log.chunk("first", first))
    await writers.start({("b",)}, log.chunk("other", other))

    third = asyncio.create_task(writers.start({("c",), ("hrid", "x")}, log.chunk("third", shared)))
    await settle()
    assert not third.done()  # it shares ("hrid", "x") with the first chunk, still running
    first.set()
    await third
    other.set()
    await writers.finish()

    assert log.events.index("end first") < log.events.index("start third")
    assert log.events.index("start third") < log.events.index("end other")


async def test_no_more_than_the_limit_run_at_once() -> None:
    log, writers = Log(), ChunkWriters(limit=2, grace_seconds=5)
    gates = [asyncio.Event() for _ in range(5)]

    async def feed() -> None:
        for n, gate in enumerate(gates):
            await writers.start({(n,)}, log.chunk(str(n), gate))
        await writers.finish()

    feeding = asyncio.create_task(feed())
    for gate in gates:
        await settle()
        assert log.running <= 2
        gate.set()
    await feeding

    assert log.most_running == 2
    assert [e for e in log.events if e.startswith("end")] == [f"end {n}" for n in range(5)]


async def test_a_failure_is_raised_by_the_next_call_and_the_others_may_finish() -> None:
    log, writers = Log(), ChunkWriters(limit=3, grace_seconds=5)
    failing, slow = asyncio.Event(), asyncio.Event()
    await writers.start({("a",)}, log.chunk("failing", failing, fail=ValueError("boom")))
    await writers.start({("b",)}, log.chunk("slow", slow))
    failing.set()
    await settle()

    with pytest.raises(ValueError, match="boom"):
        await writers.start({("c",)}, log.chunk("never", asyncio.Event()))
    abandoning = asyncio.create_task(writers.abandon())
    await settle()
    slow.set()
    failures = await abandoning

    assert [str(f) for f in failures] == ["boom"]
    assert "end slow" in log.events  # let finish, not cut
    assert "start never" not in log.events


async def test_abandoning_cuts_a_chunk_that_outlasts_the_grace() -> None:
    log, writers = Log(), ChunkWriters(limit=3, grace_seconds=0.05)
    await writers.start({("a",)}, log.chunk("stuck", asyncio.Event()))

    failures = await writers.abandon()

    assert failures == []
    assert log.events == ["start stuck"]
    assert log.running == 0
