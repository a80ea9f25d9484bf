"""The background loop that runs queued file jobs on every node."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from loadbay.background import sleep_unless_stopped
from loadbay.files.jobs import FileJobs

log = logging.getLogger("loadbay.files")


class FileJobWorker:
    """Runs queued file jobs, and takes over those whose runner died (stale heartbeat)."""

    def __init__(self, jobs: FileJobs, stale_after: timedelta) -> None:
        self._jobs = jobs
        self._stale_after = stale_after

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                job_id = await self._jobs.claim(self._stale_after)
                if job_id is not None:
                    await self._jobs.run(job_id)
                    continue
            except Exception:
                log.warning("file job worker: job failed", exc_info=True)
            await sleep_unless_stopped(stop, 1.0)
