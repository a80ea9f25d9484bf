"""The relay: publishes outbox events after commit, oldest first, at least once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial

from loadbay import metrics
from loadbay.background import sleep_unless_stopped
from loadbay.config import Settings
from loadbay.domain_events.brokers import broker_name, subject_for
from loadbay.domain_events.publishing import Message, PartialPublish, Publisher
from loadbay.storage import outbox as store
from loadbay.storage.bulk import EventClaim, PendingEvent
from loadbay.storage.database import Database
from loadbay.storage.leadership import RelayLeadership
from loadbay.storage.types import utcnow

log = logging.getLogger("loadbay.relay")

IDLE_SECONDS = 0.5
# Capped low: once the broker is back, the backlog should start draining within seconds.
BACKOFF_SECONDS = (0.5, 5.0)
PRUNE_EVERY_SECONDS = 600.0


class Relay:
    def __init__(self, db: Database, publisher: Publisher, settings: Settings) -> None:
        self._db = db
        self._publisher = publisher
        self._settings = settings
        self._leadership = RelayLeadership(db)
        self._broker = broker_name(settings.events_url or "")
        self._batch_size = settings.relay_batch(db.kind.relay_batch)

    async def publish_pending(self, keep_going: Callable[[], Awaitable[bool]] | None = None) -> int:
        """Publish unpublished events, batch after batch, until none is left to claim (or
        `keep_going` says no before the next batch); how many went out.

        Two batches overlap: while one is published, the next is claimed (the events after
        the first's), and while the next is published, the first is marked and committed. A
        batch is published only once the one before it was acknowledged whole, and commits
        after it, so events keep their order. What the broker acknowledged is marked
        published even when a later event fails; that failure is raised afterwards.
        """
        published = 0
        in_flight: list[_Round] = []
        try:
            while True:
                current = _Round(in_flight[-1] if in_flight else None)
                current.task = asyncio.create_task(self._publish_round(current))
                in_flight.append(current)
                claim = await current.claimed_or_failed()
                if len(in_flight) == 2:
                    published += await _finished(in_flight, in_flight[0])
                done = claim.caught_up
                if not done and keep_going is not None and not await keep_going():
                    # Stopping, or no longer the one relay that leads: the batch claimed
                    # last is let go unpublished.
                    current.abandoned = done = True
                if done:
                    return published + await _finished(in_flight, current)
        finally:
            # Rounds are left here only after a failure or a cancel: none publishes any more;
            # each lets its claim go, or commits what the broker already acknowledged.
            for round_ in in_flight:
                round_.abandoned = True
            ends = await asyncio.gather(
                *(asyncio.shield(r.task) for r in in_flight), return_exceptions=True
            )
            for end in ends:
                if isinstance(end, Exception):
                    log.warning("event relay: a batch in flight failed too: %s", end)

    async def _publish_round(self, this: _Round) -> int:
        failure: BaseException | None = None
        async with self._db.write() as unit:
            # Only events that no event still to commit precedes: the position never passes
            # one (see feed_horizon).
            horizon = await self._db.kind.committed_up_to(unit.conn)
            claim = await unit.bulk.claim_events(this.after, horizon, self._batch_size)
            this.claimed.set_result(claim)
            events = claim.events
            before, this.previous = this.previous, None
            if not events:
                _settle(this.acknowledged, True)
                return 0
            in_order = before is None or await asyncio.shield(before.acknowledged)
            if this.abandoned or not in_order:
                _settle(this.acknowledged, False)
                return 0
            started = time.perf_counter()
            try:
                await self._publisher.publish_all(self._messages(events))
                acknowledged = len(events)
            except PartialPublish as partial:
                # The next round resends from the first unacknowledged event, in order.
                acknowledged, failure = partial.acknowledged, partial.cause
            except BaseException:
                _settle(this.acknowledged, False)
                raise
            _settle(this.acknowledged, failure is None)
            self._count(events[:acknowledged], time.perf_counter() - started, time.time())
            if acknowledged == len(events):
                await unit.bulk.mark_published(claim.through)
            elif acknowledged:
                # Up to the first event not acknowledged: the rows before its own went out
                # whole, and so did the events before it in its row.
                first_left = events[acknowledged]
                await unit.bulk.mark_published(first_left.id - 1, first_left.rank - 1)
            if before is not None:
                await asyncio.shield(before.task)  # commit in the order of the batches
        if failure is not None:
            raise failure
        return acknowledged

    def _count(self, acknowledged: list[PendingEvent], seconds: float, now: float) -> None:
        """`now` in seconds since the epoch, as the events' `written_at`."""
        broker = self._broker
        metrics.RELAY_PUBLISH_SECONDS.labels(broker).observe(seconds)
        metrics.RELAY_PUBLISHED.labels(broker).inc(len(acknowledged))
        delay = metrics.RELAY_DELAY_SECONDS.labels(broker)
        # The events of one write statement share their commit time: observed together.
        for written_at, events in Counter(event.written_at for event in acknowledged).items():
            metrics.observe_times(delay, max(now - written_at, 0.0), events)

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
                    keep_going = partial(self._keep_going, stop, next_prune)
                    published = await self.publish_pending(keep_going)
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
                # Idle only when nothing was there: under a steady load each pass ends at the
                # horizon, a writer still in flight, well short of a batch.
                if not published:
                    await sleep_unless_stopped(stop, IDLE_SECONDS)
        finally:
            await self._publisher.close()
            await self._leadership.release()

    async def _keep_going(self, stop: asyncio.Event, prune_at: float) -> bool:
        """Whether to publish another batch now: not stopping, no prune due (a long backlog
        must not put it off), and still the one relay that leads."""
        if stop.is_set() or asyncio.get_running_loop().time() >= prune_at:
            return False
        return await self._leadership.hold()

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
            messages.append(Message(subject, event.record_key, event.payload, event.event_id))
        return messages


class _Round:
    """One batch of the relay's pipeline: its task, and what the next batch waits for."""

    def __init__(self, previous: _Round | None) -> None:
        loop = asyncio.get_running_loop()
        self.previous = previous
        # Claims the events after the previous round's (and after the relay's position, which
        # another relay may have moved on meanwhile: SQLite's relays take turns, none leads).
        # A round is made once the one before it has claimed.
        self.after = previous.claimed.result().through if previous is not None else 0
        # Set when the pipeline ends early: the round publishes nothing it has not yet begun.
        self.abandoned = False
        self.claimed: asyncio.Future[EventClaim] = loop.create_future()
        self.acknowledged: asyncio.Future[bool] = loop.create_future()
        self.task: asyncio.Task[int]

    async def claimed_or_failed(self) -> EventClaim:
        """What this round claimed; its error if it failed before claiming."""
        await asyncio.wait({self.claimed, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not self.claimed.done():
            await self.task  # raises what kept it from claiming
        return self.claimed.result()


async def _finished(in_flight: list[_Round], round_: _Round) -> int:
    """Wait for a round, shielded (a cancel here must not cut it mid-publish); it leaves
    `in_flight` once done, and its error is raised."""
    try:
        return await asyncio.shield(round_.task)
    finally:
        if round_.task.done():
            in_flight.remove(round_)


def _settle(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
