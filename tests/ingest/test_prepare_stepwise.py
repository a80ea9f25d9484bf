"""prepare_records_stepwise: the same preparation as prepare_records, a step at a time."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.engine import PreparedRecords, prepare_records, prepare_records_stepwise
from loadbay.ingest.instances import OptimisticLocking, instances_collection
from loadbay.storage.types import utcnow
from tests.api.instances.helpers import instance

COLLECTION = instances_collection("in", OptimisticLocking.OFF)


def _records(count: int) -> list[tuple[int, Any]]:
    records: list[tuple[int, Any]] = [(n, instance(n)) for n in range(count)]
    # Two steps apart: record 150 repeats record 20's id, and the later one is written.
    records[150] = (150, instance(20, title="Again"))
    records[230] = (230, {"title": "no id, no source"})
    return records


def _outline(prepared: PreparedRecords) -> list[Any]:
    return [
        [(p.index, p.row["instance_id"], p.followers) for p in prepared.ordered],
        sorted((r.index, r.error, r.message) for r in prepared.results.values()),
        prepared.mode,
    ]


@pytest.mark.parametrize("mode", list(ConflictMode))
async def test_steps_settle_duplicates_and_failures_as_one_pass_does(mode: ConflictMode) -> None:
    records, now = _records(250), utcnow()

    stepwise = await prepare_records_stepwise(COLLECTION, "t1", records, mode=mode, now=now)
    whole = prepare_records(COLLECTION, "t1", records, mode=mode, now=now)

    assert _outline(stepwise) == _outline(whole)


async def test_steps_settle_a_repeated_key_as_its_mode_says() -> None:
    records, now = _records(250), utcnow()

    failing = await prepare_records_stepwise(
        COLLECTION, "t1", records, mode=ConflictMode.FAIL, now=now
    )
    ignoring = await prepare_records_stepwise(
        COLLECTION, "t1", records, mode=ConflictMode.IGNORE, now=now
    )

    assert "(same key as record 20)" in (failing.results[150].message or "")
    kept = [p for p in ignoring.ordered if p.index == 20]
    assert [(p.followers, p.row["document"]["title"]) for p in kept] == [([150], "Title 20")]


async def test_steps_write_the_later_of_two_records_of_one_key() -> None:
    records, now = _records(250), utcnow()
    stepwise = await prepare_records_stepwise(
        COLLECTION, "t1", records, mode=COLLECTION.on_conflict, now=now
    )

    written_for_20 = [p for p in stepwise.ordered if p.row["instance_id"] == instance(20)["id"]]
    assert [(p.index, p.followers, p.row["document"]["title"]) for p in written_for_20] == [
        (150, [20], "Again")
    ]
    assert [r.index for r in stepwise.results.values()] == [230]


async def test_other_tasks_run_while_a_large_batch_is_prepared() -> None:
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)  # the counter's first turn
    first = turns
    try:
        records = [(n, instance(n)) for n in range(1000)]
        await prepare_records_stepwise(
            COLLECTION, "t1", records, mode=COLLECTION.on_conflict, now=utcnow()
        )
    finally:
        counter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counter

    # A turn after every 100 records but the last.
    assert turns - first >= 9
