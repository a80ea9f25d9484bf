"""Concurrent operator batches over the same entities: no deadlock, no 500, every write kept."""

from __future__ import annotations

import asyncio
import random

import httpx

from tests.api.operator.helpers import API, deposit, player


async def test_concurrent_upserts_and_events_on_overlapping_entities_never_deadlock(
    operator: httpx.AsyncClient,
) -> None:
    keys = range(1, 301)
    stored = await operator.post(f"{API}/batch/entities", json=[player(n) for n in keys])
    assert stored.json()["data"]["succeeded"] == len(keys)
    upserts = [random.Random(seed).sample(keys, 150) for seed in range(12)]
    event_batches = [random.Random(100 + seed).sample(keys, 150) for seed in range(4)]

    responses = await asyncio.gather(
        *(
            operator.post(f"{API}/batch/entities", json=[player(n, status="closed") for n in b])
            for b in upserts
        ),
        *(
            operator.post(
                f"{API}/batch/events",
                json=[deposit(n, eventId=f"tx-{batch_no}-{n}") for n in b],
            )
            for batch_no, b in enumerate(event_batches)
        ),
    )

    assert [r.status_code for r in responses] == [200] * len(responses), [
        r.text for r in responses if r.status_code != 200
    ]
    assert all(r.json()["data"]["failed"] == 0 for r in responses)
    for n in (1, 150, 300):
        entity = (await operator.get(f"{API}/entities/player/player_{n:03d}")).json()["data"]
        assert entity["version"] == 1 + sum(n in b for b in upserts)
