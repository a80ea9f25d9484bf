"""The relay: publishes outbox events after commit, oldest first, at least once."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from loadbay import metrics
from loadbay.background import sleep_unless_stopped
from loadbay.config import Settings
from loadbay.events.brokers import Message, PartialPublish, Publisher, broker_name, subject_for
from loadbay.storage import outbox as store
from loadbay.storage.bulk import PendingEvent
from loadbay.storage.database import Database
from loadbay.storage.leadership import RelayLeadership
from loadbay.storage.types import utcnow

log = logging.getLogger("loadbay.relay")

IDLE_SECONDS = 0.5
BACKOFF_SECONDS = (0.5, 30.0)
PRUNE_EVERY_SECONDS = 600.0


class Relay:
    def __init__(self, db: Database, publisher: Publisher, settings: Settings) -> None:
        self._db = db
        self._publisher = publisher
        self._settings = settings
        self._leadership = RelayLeadership(db)
        self._broker = broker_name(settings.events_url or "")

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; how many went out.

        What the broker acknowledged is marked published even when a later event of the
        batch fails; that failure is raised afterwards.
        """
        failure: BaseException | None = None
        async with self._db.write() as unit:
            events = await unit.bulk.claim_events(self._settings.relay_batch_size)
            started = time.perf_counter()
            try:
                await self._publisher.publish_all(self._messages(events))
                acknowledged = len(events)
            except PartialPublish as partial:
                # The next round resends from the first unacknowledged event, in order.
                acknowledged, failure = partial.acknowledged, partial.cause
            now = utcnow()
            if events:
                self._count(events[:acknowledged], time.perf_counter() - started, now)
            published = [event.id for event in events[:acknowledged]]
            await unit.bulk.mark_published(published, now)
        if failure is not None:
            raise failure
        return len(published)

    def _count(self, acknowledged: list[PendingEvent], seconds: float, now: datetime) -> None:
        broker = self._broker
        metrics.RELAY_PUBLISH_SECONDS.labels(broker).observe(seconds)
        metrics.RELAY_PUBLISHED.labels(broker).inc(len(acknowledged))
        delay = metrics.RELAY_DELAY_SECONDS.labels(broker)
        for event in acknowledged:
            delay.observe(max((now - event.created_at).total_seconds(), 0.0))

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; back off and retry, never drop, when the broker fails."""
        backoff = BACKOFF_SECONDS[0]
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                if not await self._leadership.hold():
                    await sleep_unless_stopped(stop, IDLE_SECONDS * 4)
                    continue
                try:
                    await self._publisher.connect()
                    published = await self.publish_pending()
                except Exception as error:
                    metrics.RELAY_ERRORS.labels(self._broker).inc()
                    log.warning("event relay: %s; retrying in %.1f s", error, backoff)
                    await self._publisher.close()
                    await sleep_unless_stopped(stop, backoff)
                    backoff = min(backoff * 2, BACKOFF_SECONDS[1])
                    continue
                backoff = BACKOFF_SECONDS[0]
                if loop.time() >= next_prune:
                    await self.prune()
                    next_prune = loop.time() + PRUNE_EVERY_SECONDS
                if published < self._settings.relay_batch_size:
                    await sleep_unless_stopped(stop, IDLE_SECONDS)
        finally:
            await self._publisher.close()
            await self._leadership.release()

    async def prune(self) -> int:
        keep = timedelta(hours=self._settings.events_retention_hours)
        async with self._db.write() as unit:
            return await store.prune_published(unit.conn, utcnow() - keep)

    def _messages(self, events: list[PendingEvent]) -> list[Message]:
        subjects: dict[tuple[str, str], str] = {}
        messages = []
        for event in events:
            place = (event.tenant_id, event.collection)
            subject = subjects.get(place)
            if subject is None:
                subject = subjects[place] = subject_for(self._settings, *place)
            messages.append(
                Message(subject, event.record_key, event.payload.encode(), event.event_id)
            )
        return messages
