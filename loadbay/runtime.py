"""Interpreter settings for a long-running server process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

# A bulk request allocates hundreds of thousands of short-lived objects; at the default
# first-generation threshold (700) the collector runs thousands of times per batch and every
# older-generation pass walked the whole heap (28 to 35% of server CPU). 10,000 keeps that
# cost small once the start-up heap is frozen; 50,000 with rarer older passes was no faster
# and let cyclic garbage pile up: 111 -> 312 MB over a 1M-line file, against flat here (each
# chunk then left ~500 cyclic SQLAlchemy objects holding its parameter lists; file jobs now
# leave none, which lets them pause the collector: CollectorPause).
_GEN0_THRESHOLD = 10_000
_GEN1_THRESHOLD = 10
_GEN2_THRESHOLD = 10


def settle_heap() -> None:
    """After start-up: freeze what lives for the whole process and space collections out.

    Frozen objects (modules, the app, compiled schemas, pools) are never scanned again, so a
    full collection only walks what requests left behind.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GEN0_THRESHOLD, _GEN1_THRESHOLD, _GEN2_THRESHOLD)


class CollectorPause:
    """The collector's automatic passes held off while bulk work runs in this process.

    A file job holds the records of several parsed chunks at once, until each chunk commits:
    an acyclic graph of tens of thousands of objects that every pass walked again while it
    waited, and that refcounting alone frees. The passes were 4.5-7% of a job's CPU with
    four-field instance lines and 16-21% with catalogue-shaped ones (nested lists;
    `bench.file_job_cost --catalogue` at 8ad64ca). While any holder is inside `held`, the
    automatic collector is off; holders call `sweep_if_due` as they go, and a full pass every
    `sweep_every` seconds collects the cyclic garbage the process makes meanwhile (a failed
    statement's traceback, say); the last holder to leave turns the collector back on.
    Nothing here is bound to an event loop.
    """

    def __init__(self, sweep_every: float) -> None:
        self._sweep_every = sweep_every
        self._holders = 0
        # Whether the holders switched the collector off (not: someone else had).
        self._paused = False
        self._next_sweep = 0.0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._holders == 0 and gc.isenabled():
            gc.disable()
            self._paused = True
            self._next_sweep = time.monotonic() + self._sweep_every
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0 and self._paused:
                self._paused = False
                gc.enable()

    def sweep_if_due(self) -> None:
        """A full pass, if the collector is paused and the last one is `sweep_every` ago."""
        if self._paused and time.monotonic() >= self._next_sweep:
            gc.collect()
            self._next_sweep = time.monotonic() + self._sweep_every


# Every file job of the process shares the one pause: the collector is process-wide.
BULK_WORK = CollectorPause(sweep_every=10.0)


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived async command on uvloop when installed (it comes with
    uvicorn[standard] where it builds): the loop uvicorn runs the server on, so that a relay
    run alone behaves, and is measured, as it does inside the server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
