"""SQLite's write-ahead log copied into the database file beside the writers, not by them.

By default the commit that takes the log past 1,000 pages checkpoints it: copies the pages
into the database file and syncs it, while that write still holds the database's only write
lock. A 1,000-entity batch writes about 250 pages, so every fourth batch paid 5-19 ms, 2 ms a
batch on average, and every other writer waited meanwhile. Here a background task checkpoints
after writes instead; a checkpoint never blocks a writer. The connections' own automatic
checkpoint stays as a backstop, at `BACKSTOP_PAGES`, for a log this task cannot keep small.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from loadbay.background import sleep_unless_stopped

log = logging.getLogger("loadbay.storage")

# 32 MB of 4 KB pages: about a second of the fastest writes, more than a round of this task.
BACKSTOP_PAGES = 8_000
INTERVAL_SECONDS = 0.1


class WalCheckpoints:
    def __init__(self, database_file: Path) -> None:
        self._file = database_file
        self._connection: sqlite3.Connection | None = None
        self._writes = 0  # writes committed by this process
        self._checkpointed_after = 0  # the count of writes the last checkpoint came after

    def note_write(self) -> None:
        self._writes += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Checkpoint after this process's writes, until `stop` is set."""
        try:
            while not stop.is_set():
                await sleep_unless_stopped(stop, INTERVAL_SECONDS)
                if self._writes != self._checkpointed_after:
                    self._checkpointed_after = self._writes
                    await asyncio.to_thread(self._checkpoint)
        finally:
            if self._connection is not None:
                self._connection.close()

    def _checkpoint(self) -> None:
        # PASSIVE: copy what no reader still needs, wait for nobody. A checkpoint of another
        # process under way makes this one busy at once (timeout 0): it does the job.
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self._file, timeout=0, isolation_level=None, check_same_thread=False
                )
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.warning("WAL checkpoint of %s failed", self._file, exc_info=True)
