"""GET list and detail, DELETE of batch-insert records."""

from __future__ import annotations

import re

import httpx
import pytest

from loadbay.api.batch_insert_schemas import BatchDetail, BatchList
from tests.factories import ACTIVITIES, BATCHES, activity, batch

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


async def make_batches(client: httpx.AsyncClient, count: int) -> None:
    for n in range(count):
        response = await client.post(BATCHES, json=batch(activity(n)))
        assert response.status_code == 201


async def test_list_is_newest_first_with_pagination(client: httpx.AsyncClient) -> None:
    await make_batches(client, 5)

    body = (await client.get(BATCHES)).json()

    BatchList.model_validate(body)
    assert [b["id"] for b in body["data"]] == [f"batch-00{n}" for n in (5, 4, 3, 2, 1)]
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 5}
    first = body["data"][0]
    assert set(first) == {
        "id",
        "record_count",
        "status",
        "inserted_count",
        "failed_count",
        "created_at",
    }
    assert TIMESTAMP.fullmatch(first["created_at"])


@pytest.mark.parametrize(
    ("page", "limit", "ids"),
    [
        (1, 2, ["batch-005", "batch-004"]),
        (2, 2, ["batch-003", "batch-002"]),
        (3, 2, ["batch-001"]),
        (4, 2, []),
        (1, 100, ["batch-005", "batch-004", "batch-003", "batch-002", "batch-001"]),
    ],
)
async def test_list_pages(client: httpx.AsyncClient, page: int, limit: int, ids: list[str]) -> None:
    await make_batches(client, 5)

    body = (await client.get(BATCHES, params={"page": page, "limit": limit})).json()

    assert [b["id"] for b in body["data"]] == ids
    assert body["pagination"] == {"page": page, "limit": limit, "total": 5}


@pytest.mark.parametrize(
    "params",
    [{"limit": 101}, {"limit": 0}, {"page": 0}, {"page": "abc"}, {"status": "weird"}],
)
async def test_bad_list_parameters_are_422(client: httpx.AsyncClient, params: dict) -> None:
    response = await client.get(BATCHES, params=params)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert next(iter(params)) in response.json()["error"]["message"]


async def test_list_filters_by_status(client: httpx.AsyncClient) -> None:
    await make_batches(client, 2)
    await client.post(BATCHES, json=batch({"bad": 1}))

    failed = (await client.get(BATCHES, params={"status": "failed"})).json()
    completed = (await client.get(BATCHES, params={"status": "completed"})).json()

    assert [b["id"] for b in failed["data"]] == ["batch-003"]
    assert failed["pagination"]["total"] == 1
    assert completed["pagination"]["total"] == 2


async def test_detail_has_every_result_and_timestamps(client: httpx.AsyncClient) -> None:
    await client.post(BATCHES, json=batch(activity(1), activity(1), activity(2)))

    body = (await client.get(f"{BATCHES}/batch-001")).json()

    BatchDetail.model_validate(body)
    assert body["record_count"] == 3
    assert [r["status"] for r in body["results"]] == ["success", "failed", "success"]
    assert body["results"][1]["error"] == "unique_constraint_violation"
    assert TIMESTAMP.fullmatch(body["created_at"])
    assert TIMESTAMP.fullmatch(body["completed_at"])
    assert body["completed_at"] >= body["created_at"]


@pytest.mark.parametrize("batch_id", ["batch-999", "batch-1", "batch-0001", "pa-001", "x", "1"])
async def test_unknown_or_malformed_ids_are_404(client: httpx.AsyncClient, batch_id: str) -> None:
    await make_batches(client, 1)

    for method in ("GET", "DELETE"):
        response = await client.request(method, f"{BATCHES}/{batch_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_delete_removes_the_record_but_keeps_the_activities(
    client: httpx.AsyncClient,
) -> None:
    await make_batches(client, 2)

    response = await client.delete(f"{BATCHES}/batch-001")

    assert response.status_code == 200
    assert response.json() == {"message": "Batch insert record batch-001 deleted successfully"}
    assert (await client.get(f"{BATCHES}/batch-001")).status_code == 404
    assert (await client.delete(f"{BATCHES}/batch-001")).status_code == 404
    assert [b["id"] for b in (await client.get(BATCHES)).json()["data"]] == ["batch-002"]
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 2
