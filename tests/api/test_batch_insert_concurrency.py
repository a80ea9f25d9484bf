"""Concurrent writers of the same keys: no 500, no deadlock, every key stored once."""

from __future__ import annotations

import asyncio
import random

import httpx

from tests.factories import ACTIVITIES, BATCHES, activity, batch


async def test_overlapping_concurrent_batches_store_each_key_exactly_once(
    client: httpx.AsyncClient,
) -> None:
    keys = range(400)
    batches = [random.Random(seed).sample(keys, 200) for seed in range(10)]

    responses = await asyncio.gather(
        *(client.post(BATCHES, json=batch(*(activity(k) for k in b))) for b in batches)
    )

    assert [r.status_code for r in responses] == [201] * len(batches)
    winners: dict[int, list[str]] = {}
    for keys_sent, response in zip(batches, responses, strict=True):
        for key, result in zip(keys_sent, response.json()["results"], strict=True):
            if result["status"] == "success":
                winners.setdefault(key, []).append(result["activity_id"])
            else:
                assert result["error"] == "unique_constraint_violation"
    every_key = set().union(*batches)
    assert set(winners) == every_key
    assert all(len(ids) == 1 for ids in winners.values())
    assert sum(r.json()["inserted_count"] for r in responses) == len(every_key)
    listed = (await client.get(ACTIVITIES, params={"limit": 1})).json()
    assert listed["pagination"]["total"] == len(every_key)


async def test_concurrent_retries_of_one_batch_apply_once(client: httpx.AsyncClient) -> None:
    await client.post(BATCHES, json=batch(activity(1)))
    await client.post(BATCHES, json=batch(activity(1, duration_minutes=30)))

    responses = await asyncio.gather(
        *(
            client.put(
                f"{BATCHES}/batch-002", json={"retry_indices": [0], "ignore_constraints": True}
            )
            for _ in range(4)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 422, 422, 422]
    assert all(
        r.json()["error"]["code"] == "record_not_failed" for r in responses if r.status_code == 422
    )
    assert (await client.get(f"{ACTIVITIES}/pa-001")).json()["version"] == 2
