"""The collector's pause for bulk work: off while held, on again after the last holder, and a
full pass when due collects the cyclic garbage other work makes meanwhile."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from loadbay.runtime import CollectorPause


class _Node:
    """An object that can sit in a reference cycle."""

    partner: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    """A reference cycle nothing else holds: only a pass of the collector frees it."""
    node = _Node()
    node.partner = node
    return weakref.ref(node)


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    assert gc.isenabled()
    yield
    gc.enable()


def test_the_collector_is_off_only_while_held() -> None:
    pause = CollectorPause(sweep_every=60)

    with pause.held():
        inside = gc.isenabled()

    assert (inside, gc.isenabled()) == (False, True)


def test_the_last_of_several_holders_turns_it_back_on() -> None:
    pause = CollectorPause(sweep_every=60)

    with pause.held():
        with pause.held():
            pass
        after_the_first = gc.isenabled()

    assert (after_the_first, gc.isenabled()) == (False, True)


def test_a_holder_that_fails_turns_it_back_on() -> None:
    pause = CollectorPause(sweep_every=60)

    with pytest.raises(RuntimeError), pause.held():
        raise RuntimeError("the job failed")

    assert gc.isenabled()


def test_cyclic_garbage_made_during_the_pause_is_swept_when_due() -> None:
    pause = CollectorPause(sweep_every=0)
    waiting = CollectorPause(sweep_every=60)

    with pause.held():
        collected = _cycle()
        pause.sweep_if_due()
        swept = collected() is None
    with waiting.held():
        kept = _cycle()
        waiting.sweep_if_due()
        not_yet = kept() is not None

    assert (swept, not_yet) == (True, True)


def test_a_collector_switched_off_elsewhere_stays_off_and_unswept() -> None:
    pause = CollectorPause(sweep_every=0)
    gc.disable()

    with pause.held():
        kept = _cycle()
        pause.sweep_if_due()

    assert (gc.isenabled(), kept() is not None) == (False, True)
