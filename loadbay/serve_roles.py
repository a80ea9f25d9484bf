"""Which process of one `loadbay serve` runs the event relay: told by the supervisor, through
the environment its children inherit.

A module on the standard library only, like metrics_sharing, for the supervisor to import.
"""

from __future__ import annotations

import os

_RELAY_BESIDE = "LOADBAY_SERVE_RELAY_PROCESS"
# Workers beside a relay run at this nice value: when the cores are all busy, the kernel
# gives a nice-5 process about a third of the share of a nice-0 one, so the relay (and the
# database, and the broker) are served first and ingestion takes what is left; on idle
# cores it changes nothing.
_WORKER_NICENESS = 5


def relay_beside_the_workers() -> None:
    """Call in the supervisor before its workers start: the relay runs in a process of its
    own, and the workers leave it to that process."""
    os.environ[_RELAY_BESIDE] = "1"


def relay_runs_beside() -> bool:
    """Whether this server's relay runs in a process beside its workers, not in them."""
    return os.environ.get(_RELAY_BESIDE) == "1"


def yield_to_the_relay() -> None:
    """In a worker: lower its priority when the relay runs beside it (see _WORKER_NICENESS),
    so that under a full load the relay keeps up with what the workers write."""
    if relay_runs_beside():
        os.nice(_WORKER_NICENESS)
