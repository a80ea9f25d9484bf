"""The collector's pause for bulk work: off while held, on again after the last holder, and a
periodic full pass meanwhile collects the cyclic garbage other work makes."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from loadbay.runtime import CollectorPause


class _Node:
    """An object that can sit in a reference cycle."""

    partner: _Node | None = None


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    assert gc.isenabled()
    yield
    gc.enable()


async def test_the_collector_is_off_only_while_held() -> None:
    pause = CollectorPause(sweep_every=60)

    async with pause.held():
        inside = gc.isenabled()

    assert (inside, gc.isenabled()) == (False, True)


async def test_the_last_of_concurrent_holders_turns_it_back_on() -> None:
    pause = CollectorPause(sweep_every=60)
    first_out = asyncio.Event()
    seen: list[bool] = []

    async def short() -> None:
        async with pause.held():
            await asyncio.sleep(0)
        first_out.set()

    async def long() -> None:
        async with pause.held():
            await first_out.wait()
            seen.append(gc.isenabled())

    await asyncio.gather(long(), short())

    assert seen == [False]
    assert gc.isenabled()


async def test_a_holder_that_fails_turns_it_back_on() -> None:
    pause = CollectorPause(sweep_every=60)

    with pytest.raises(RuntimeError):
        async with pause.held():
            raise RuntimeError("the job failed")

    assert gc.isenabled()


async def test_cyclic_garbage_made_during_the_pause_is_swept() -> None:
    pause = CollectorPause(sweep_every=0.05)

    async with pause.held():
        node = _Node()
        node.partner = node
        collected = weakref.ref(node)
        del node
        await asyncio.sleep(0.3)
        swept = collected() is None

    assert swept


async def test_a_collector_switched_off_elsewhere_stays_off() -> None:
    pause = CollectorPause(sweep_every=60)
    gc.disable()

    async with pause.held():
        pass

    assert not gc.isenabled()
