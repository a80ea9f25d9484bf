"""Interpreter settings for a long-running server process."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# A bulk request allocates hundreds of thousands of short-lived objects; at the default
# first-generation threshold (700) the collector runs thousands of times per batch and every
# older-generation pass walked the whole heap (28 to 35% of server CPU). 10,000 keeps that
# cost small once the start-up heap is frozen; 50,000 with rarer older passes was no faster
# and let cyclic garbage pile up: 111 -> 312 MB over a 1M-line file, against flat here.
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


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived async command on uvloop when installed (it comes with
    uvicorn[standard] where it builds): the loop uvicorn runs the server on, so that a relay
    run alone behaves, and is measured, as it does inside the server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
