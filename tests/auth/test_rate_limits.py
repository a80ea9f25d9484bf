"""Rate limits per key and scope, on memory and on the real Redis of this machine."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from loadbay.app import create_app
from tests.conftest import ClientFactory
from tests.factories import BATCHES

LIMITED = {"rate_limits": "read=3/minute,ingest:batch=100/minute"}
REDIS = "redis://127.0.0.1:6379"


def redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("settings_overrides", [LIMITED])
async def test_the_limit_answers_429_with_headers(make_client: ClientFactory) -> None:
    client = await make_client()

    responses = [await client.get(BATCHES) for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses[:3]] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" for r in responses)
    refused = responses[3]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert int(refused.headers["x-ratelimit-reset"]) > 0


@pytest.mark.parametrize("settings_overrides", [LIMITED])
async def test_limits_are_per_key_and_per_scope(make_client: ClientFactory) -> None:
    first, second = await make_client(), await make_client()
    for _ in range(3):
        await first.get(BATCHES)

    assert (await first.get(BATCHES)).status_code == 429
    assert (await second.get(BATCHES)).status_code == 200
    assert (await first.post(BATCHES, json={"activities": []})).status_code == 400


@pytest.mark.parametrize("settings_overrides", [LIMITED])
async def test_operator_surface_says_rate_limited(make_client: ClientFactory) -> None:
    client = await make_client()
    for _ in range(3):
        await client.get("/operator-data-api/settings")

    response = await client.get("/operator-data-api/settings")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert response.json()["success"] is False


async def test_redis_storage_shares_counters_between_nodes(
    make_settings: Any, make_client: ClientFactory
) -> None:
    if not redis_reachable():
        pytest.skip(f"Redis not reachable at {REDIS}: shared rate-limit test skipped")
    settings = make_settings(rate_limit_url=REDIS, **LIMITED)
    node_a, node_b = create_app(settings), create_app(settings)
    client = await make_client()
    auth = {"Authorization": client.headers["authorization"]}

    async with node_a.router.lifespan_context(node_a), node_b.router.lifespan_context(node_b):
        statuses = []
        for node in (node_a, node_b, node_a, node_b):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=node), base_url="http://t", headers=auth
            ) as c:
                statuses.append((await c.get(BATCHES)).status_code)

    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(
    "settings_overrides", [{**LIMITED, "rate_limit_url": "redis://127.0.0.1:1"}]
)
async def test_an_unreachable_limit_store_does_not_stop_ingestion(
    make_client: ClientFactory,
) -> None:
    client = await make_client()

    responses = [await client.get(BATCHES) for _ in range(4)]

    assert [r.status_code for r in responses] == [200] * 4
