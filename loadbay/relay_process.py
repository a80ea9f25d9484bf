"""The event relay in a process of its own: `loadbay relay`, and the relay that `loadbay
serve` runs beside its workers.

Inside a worker the relay shared one event loop with request handling, and each batch
request holds that loop for tens of milliseconds: under a full load the relay published
16-19k events/s of the 52k it clears alone, and the outbox lag climbed for as long as the
load lasted (13.8 s after 30 s, NATS). In a process of its own, with the workers at a lower
priority (serve_roles), it keeps up: at most 1.55 s (NATS) and 1.56 s (Redis) over 60 s.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import signal
import sys

from loadbay.config import Settings
from loadbay.domain_events.brokers import publisher_for
from loadbay.domain_events.relay import Relay
from loadbay.runtime import run_loop, settle_heap
from loadbay.serving_worker import exit_now, log_config, stop_with_parent
from loadbay.storage.database import Database

log = logging.getLogger("loadbay.relay")


async def relay_until_stopped(settings: Settings, *, migrate: bool) -> None:
    """Publish until SIGTERM or SIGINT; the batch being sent is finished first."""
    db = Database(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if migrate:
            from loadbay.storage import migrate as migrations  # Alembic: only when asked

            await migrations.upgrade(db)
        settle_heap()
        await Relay(db, publisher_for(settings), settings).run(stop)
    finally:
        await db.dispose()


if __name__ == "__main__":
    (log_format,) = sys.argv[1:]
    stop_with_parent()
    logging.config.dictConfig(log_config(log_format))
    log.info("Started relay process [%d]", os.getpid())
    run_loop(relay_until_stopped(Settings(), migrate=False))
    exit_now()
