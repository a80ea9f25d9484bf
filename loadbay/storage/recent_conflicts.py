"""Which (table, tenant) pairs met stored keys lately: whether a plain INSERT is worth a try."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

# Long enough that a re-load tries (and fails) a plain INSERT a few times a minute at most;
# short enough that a tenant going from re-loads to new records soon writes at full speed.
REMEMBERED_SECONDS = 10.0
# Past this many pairs remembered, those older than the window are forgotten.
_MOST_REMEMBERED = 4096


class RecentConflicts:
    """Per process and database: writes that met stored keys, by what they wrote to."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_met: dict[Hashable, float] = {}

    def expected(self, key: Hashable) -> bool:
        """Whether a write to `key` met stored keys in the last `REMEMBERED_SECONDS`."""
        met = self._last_met.get(key)
        return met is not None and self._clock() - met < REMEMBERED_SECONDS

    def met(self, key: Hashable) -> None:
        now = self._clock()
        if len(self._last_met) >= _MOST_REMEMBERED:
            self._last_met = {
                k: t for k, t in self._last_met.items() if now - t < REMEMBERED_SECONDS
            }
        self._last_met[key] = now
