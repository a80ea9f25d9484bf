"""SQLite's one writer at a time, queued across every process of one database file.

Inside a process an asyncio lock queues the writers; between processes (`--workers N`) an
exclusive `flock` on a file beside the database does. Without it a second process's
`BEGIN IMMEDIATE` meets SQLITE_BUSY and sleeps in SQLite's busy handler (1 to 100 ms steps),
so two workers wrote less than one. A waiter on `flock` wakes the moment the lock is free.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path


class WriterLock:
    def __init__(self, database_file: Path | None) -> None:
        self._local = asyncio.Lock()
        self._path = (
            None
            if database_file is None
            else database_file.with_name(database_file.name + ".writer-lock")
        )
        self._fd: int | None = None
        # flock blocks its thread: one thread of our own, never the loop or the default pool.
        self._waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer-lock")

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        async with self._local:
            if self._path is None:
                yield
                return
            fd = self._open()
            acquiring = asyncio.get_running_loop().run_in_executor(
                self._waiter, fcntl.flock, fd, fcntl.LOCK_EX
            )
            try:
                await asyncio.shield(acquiring)
            except asyncio.CancelledError:
                # The thread still gets the lock: give it back as soon as it does.
                acquiring.add_done_callback(lambda done: _unlock_if_held(done, fd))
                raise
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        if self._fd is None:
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._waiter.shutdown(wait=False)


def _unlock_if_held(acquiring: asyncio.Future[None], fd: int) -> None:
    if not acquiring.cancelled() and acquiring.exception() is None:
        fcntl.flock(fd, fcntl.LOCK_UN)
