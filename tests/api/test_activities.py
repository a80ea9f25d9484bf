"""GET /api/v1/activities and /api/v1/activities/:id."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import ACTIVITIES, BATCHES, activity, batch


@pytest.fixture
async def stored(client: httpx.AsyncClient) -> list[str]:
    """The ids of the five stored activities, by their index in the batch."""
    records = [
        activity(1),
        activity(2, coordinator_id="coord-7"),
        activity(3, activity_type="one_to_one"),
        activity(1, activity_date="2026-04-01"),
        activity(4, coordinator_id="coord-7", activity_date="2026-04-01"),
    ]
    body = (await client.post(BATCHES, json=batch(*records))).json()
    assert body["inserted_count"] == 5
    return [r["activity_id"] for r in body["results"]]


async def test_get_one(client: httpx.AsyncClient, stored: list[str]) -> None:
    body = (await client.get(f"{ACTIVITIES}/{stored[1]}")).json()

    assert body["id"] == stored[1]
    assert body["coordinator_id"] == "coord-7"
    assert body["mentor_id"] == "mentor-2"
    assert body["version"] == 1
    assert body["created_at"] == body["updated_at"]


@pytest.mark.parametrize("activity_id", ["pa-999", "pa-2", "batch-001", "pa-", "pa-abc"])
async def test_unknown_activity_is_404(
    client: httpx.AsyncClient, stored: list[str], activity_id: str
) -> None:
    response = await client.get(f"{ACTIVITIES}/{activity_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_list_in_id_order_with_pages(client: httpx.AsyncClient, stored: list[str]) -> None:
    first = (await client.get(ACTIVITIES, params={"limit": 2})).json()
    third = (await client.get(ACTIVITIES, params={"limit": 2, "page": 3})).json()

    assert [a["id"] for a in first["data"]] == ["pa-001", "pa-002"]
    assert [a["id"] for a in third["data"]] == ["pa-005"]
    assert third["pagination"] == {"page": 3, "limit": 2, "total": 5}


@pytest.mark.parametrize(
    ("params", "indices"),
    [
        ({"mentor_id": "mentor-1"}, [0, 3]),
        ({"coordinator_id": "coord-7"}, [1, 4]),
        ({"activity_type": "one_to_one"}, [2]),
        ({"activity_date": "2026-04-01"}, [3, 4]),
        ({"activity_date": "2026-04-01", "coordinator_id": "coord-7"}, [4]),
        ({"mentor_id": "nobody"}, []),
    ],
)
async def test_list_filters(
    client: httpx.AsyncClient, stored: list[str], params: dict[str, str], indices: list[int]
) -> None:
    body = (await client.get(ACTIVITIES, params=params)).json()

    assert {a["id"] for a in body["data"]} == {stored[i] for i in indices}
    assert body["pagination"]["total"] == len(indices)


async def test_bad_filter_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get(ACTIVITIES, params={"activity_date": "yesterday"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_parameter"
