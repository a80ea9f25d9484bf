"""The validate-only batch endpoints refuse bad requests as their write twins do, and never
write: not the records, not a job."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.operator.helpers import API, player, use_template
from tests.factories import BATCHES, activity


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"[]", "invalid_body"),
        (b'{"activities": [], "extra": 1}', "invalid_body"),
        (b'{"activities": []}', "empty_batch"),
        (b'{"activities": "x"}', "invalid_body"),
    ],
)
async def test_activity_validation_refuses_bad_requests(
    client: httpx.AsyncClient, body: bytes, code: str
) -> None:
    response = await client.post(
        f"{BATCHES}/validate", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


async def test_activity_validation_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {"activities": [activity(n) for n in range(1001)]}

    response = await client.post(f"{BATCHES}/validate", json=body)

    assert response.status_code == 413


@pytest.mark.parametrize(("body", "status"), [(b"{not json", 400), (b"{}", 400), (b"[]", 400)])
async def test_operator_validation_refuses_bad_requests(
    client: httpx.AsyncClient, body: bytes, status: int
) -> None:
    await use_template(client)

    response = await client.post(
        f"{API}/batch/entities/validate", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == status
    assert response.json()["success"] is False


async def test_validation_writes_nothing(client: httpx.AsyncClient) -> None:
    await use_template(client)

    checked = await client.post(f"{API}/batch/entities/validate", json=[player(1)])
    valid = await client.post(f"{BATCHES}/validate", json={"activities": [activity(1)]})

    assert checked.json()["data"] == {"valid": 1, "failed": 0, "errors": []}
    assert valid.json()["valid_count"] == 1
    assert (await client.get(f"{API}/entities/player/player_001")).status_code == 404
    assert (await client.get(BATCHES)).json()["pagination"]["total"] == 0
