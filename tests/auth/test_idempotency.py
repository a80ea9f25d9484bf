"""Idempotency-Key on writes: the first response is replayed; a different body is refused."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from loadbay.errors import Conflict
from loadbay.ingest.activities import ACTIVITIES as ACTIVITIES_COLLECTION
from loadbay.ingest.jobs import IdempotentRequest
from loadbay.storage import idempotency as idempotency_store
from loadbay.storage.tables import idempotency_keys
from loadbay.storage.types import utcnow
from tests.api.operator.helpers import API, player, use_template
from tests.conftest import ClientFactory
from tests.factories import ACTIVITIES, BATCHES, activity, batch


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def test_a_repeated_batch_is_replayed_not_redone(client: httpx.AsyncClient) -> None:
    body = batch(activity(1), activity(2))
    first = await client.post(BATCHES, json=body, headers=key("load-42"))
    second = await client.post(BATCHES, json=body, headers=key("load-42"))

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert (await client.get(BATCHES)).json()["pagination"]["total"] == 1
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 2


async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    await client.post(BATCHES, json=batch(activity(1)), headers=key("k1"))

    response = await client.post(BATCHES, json=batch(activity(2)), headers=key("k1"))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 1


async def test_the_same_key_on_another_path_is_422(client: httpx.AsyncClient) -> None:
    await client.post(BATCHES, json=batch(activity(1)), headers=key("k1"))

    response = await client.put(f"{BATCHES}/batch-001", json=batch(activity(1)), headers=key("k1"))

    assert response.status_code == 422


async def test_client_errors_are_replayed_too(client: httpx.AsyncClient) -> None:
    first = await client.post(BATCHES, json={"activities": []}, headers=key("k2"))
    second = await client.post(BATCHES, json={"activities": []}, headers=key("k2"))

    assert first.status_code == second.status_code == 400
    assert second.json() == first.json()


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": "ingest:batch=1/second"}])
async def test_a_refusal_to_come_back_later_is_not_replayed(client: httpx.AsyncClient) -> None:
    """A 429 says "not now": the same key, sent again later, must run the batch."""
    first = await client.post(BATCHES, json=batch(activity(1)), headers=key("a"))
    limited = await client.post(BATCHES, json=batch(activity(2)), headers=key("b"))
    await asyncio.sleep(float(limited.headers["retry-after"]))

    retried = await client.post(BATCHES, json=batch(activity(2)), headers=key("b"))

    assert (first.status_code, limited.status_code) == (201, 429)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["inserted_count"] == 1


async def test_keys_are_per_tenant(make_client: ClientFactory) -> None:
    alice = await make_client(tenant="alice")
    bob = await make_client(tenant="bob")

    a = await alice.post(BATCHES, json=batch(activity(1)), headers=key("same"))
    b = await bob.post(BATCHES, json=batch(activity(2)), headers=key("same"))

    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers


async def test_operator_batches_honour_the_key(make_client: ClientFactory) -> None:
    client = await make_client(tenant="op")
    await client.put(f"{API}/settings", json={"templateId": "igaming"})

    first = await client.post(f"{API}/batch/entities", json=[player(1)], headers=key("e1"))
    second = await client.post(f"{API}/batch/entities", json=[player(1)], headers=key("e1"))

    assert second.json()["data"]["jobId"] == first.json()["data"]["jobId"]
    stored = (await client.get(f"{API}/entities/player/player_001")).json()["data"]
    assert stored["version"] == 1
    mismatch = await client.post(f"{API}/batch/entities", json=[player(2)], headers=key("e1"))
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("bad", ["", "has space", "é", "x" * 256])
async def test_malformed_keys_are_400(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.post(
        BATCHES, json=batch(activity(1)), headers={"Idempotency-Key": bad.encode("utf-8")}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert (await client.get(BATCHES)).json()["pagination"]["total"] == 0


async def test_a_key_without_credentials_is_still_401(make_client: ClientFactory) -> None:
    anonymous = await make_client(scopes=())

    response = await anonymous.post(BATCHES, json=batch(activity(1)), headers=key("k"))

    assert response.status_code == 401


async def test_concurrent_repeats_write_once(client: httpx.AsyncClient) -> None:
    body = batch(*(activity(n) for n in range(50)))

    responses = await asyncio.gather(
        *(client.post(BATCHES, json=body, headers=key("burst")) for _ in range(5))
    )

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1
    assert all(
        r.json()["error"]["code"] == "idempotency_key_in_use"
        for r in responses
        if r.status_code == 409
    )
    assert (await client.get(BATCHES)).json()["pagination"]["total"] == 1
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 50


async def test_reads_ignore_the_header(client: httpx.AsyncClient) -> None:
    await client.post(BATCHES, json=batch(activity(1)))
    first = await client.get(BATCHES, headers=key("r"))
    await client.post(BATCHES, json=batch(activity(2)))
    second = await client.get(BATCHES, headers=key("r"))

    assert first.json()["pagination"]["total"] == 1
    assert second.json()["pagination"]["total"] == 2


@pytest.mark.parametrize(("quiet_for", "expected"), [(20, 201), (2, 409)])
async def test_a_claim_whose_request_died_frees_within_seconds(
    client: httpx.AsyncClient, started: FastAPI, quiet_for: int, expected: int
) -> None:
    body = orjson.dumps(batch(activity(1)))
    fingerprint = hashlib.sha256(b"\n".join([b"POST", BATCHES.encode(), b"", body])).hexdigest()
    # What a request killed mid-way (or cut off from its database) leaves: a claim, no answer.
    async with started.state.db.write() as unit:
        since = utcnow() - timedelta(seconds=quiet_for)
        await idempotency_store.try_claim(unit.conn, "default", "crashed-1", fingerprint, since)

    resent = await client.post(
        BATCHES, content=body, headers={**key("crashed-1"), "Content-Type": "application/json"}
    )

    assert resent.status_code == expected, resent.text
    stored = (await client.get(ACTIVITIES)).json()["pagination"]["total"]
    assert stored == (1 if expected == 201 else 0)


async def _lose_the_answer(app: FastAPI, key_value: str) -> None:
    """What a kill -9 between a batch's commit and its stored answer leaves behind."""
    async with app.state.db.write() as unit:
        await unit.conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == key_value)
            .values(
                status_code=None,
                response_body=None,
                response_headers=None,
                heartbeat_at=utcnow() - timedelta(seconds=20),
            )
        )


async def test_a_batch_whose_answer_was_lost_is_answered_not_run_again(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    body = batch(activity(1), activity(2), activity(1))
    first = await client.post(BATCHES, json=body, headers=key("lost-1"))
    await _lose_the_answer(started, "lost-1")

    resent = await client.post(BATCHES, json=body, headers=key("lost-1"))
    again = await client.post(BATCHES, json=body, headers=key("lost-1"))

    assert first.status_code == resent.status_code == 201
    assert resent.json() == first.json()
    assert resent.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert (await client.get(BATCHES)).json()["pagination"]["total"] == 1
    events = (await client.get("/events", params={"limit": 100})).json()["data"]
    assert len(events) == 2


async def test_an_operator_batch_whose_answer_was_lost_is_not_applied_twice(
    make_client: ClientFactory, started: FastAPI
) -> None:
    client = await make_client(tenant="op")
    await use_template(client)
    body = [player(1), player(2), {"entityType": "player"}]
    first = await client.post(f"{API}/batch/entities", json=body, headers=key("lost-2"))
    await _lose_the_answer(started, "lost-2")

    resent = await client.post(f"{API}/batch/entities", json=body, headers=key("lost-2"))

    assert first.status_code == resent.status_code == 200
    assert resent.json() == first.json()
    assert resent.json()["data"]["failed"] == 1
    events = (await client.get("/events", params={"limit": 100})).json()["data"]
    assert [e["type"] for e in events] == ["CREATE", "CREATE"]


async def test_a_lost_answer_does_not_free_the_key_for_another_body(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    await client.post(BATCHES, json=batch(activity(1)), headers=key("lost-3"))
    await _lose_the_answer(started, "lost-3")

    other = await client.post(BATCHES, json=batch(activity(2)), headers=key("lost-3"))

    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_request_whose_claim_was_taken_over_stores_nothing(
    client: httpx.AsyncClient, started: FastAPI
) -> None:
    service = started.state.idempotency
    claim = await service.claim("default", "slow-1", "fingerprint")
    # It waited past the heartbeat's limit; a resend took the key over (a newer claim).
    async with started.state.db.write() as unit:
        await idempotency_store.reclaim(
            unit.conn, "default", "slow-1", "fingerprint", utcnow(), keep_job=False
        )
    mine = IdempotentRequest("default", "slow-1", claim.claimed_at)

    with pytest.raises(Conflict) as refused:
        await started.state.activity_batches.run(
            "default", ACTIVITIES_COLLECTION, [activity(1)], mine
        )

    assert refused.value.code == "idempotency_key_in_use"
    assert (await client.get(BATCHES)).json()["pagination"]["total"] == 0
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 0
