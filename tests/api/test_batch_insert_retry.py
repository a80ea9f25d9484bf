"""PUT /api/v1/batch-inserts/:id: retrying failed records."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loadbay.api.batch_insert_schemas import RetryResponse
from tests.factories import ACTIVITIES, BATCHES, activity, batch


async def retry(
    client: httpx.AsyncClient, body: Any, batch_id: str = "batch-002"
) -> httpx.Response:
    return await client.put(f"{BATCHES}/{batch_id}", json=body)


@pytest.fixture
async def collided(client: httpx.AsyncClient) -> dict[str, Any]:
    """batch-001 stored mentor-1; batch-002's record 1 collides with it, record 2 is invalid."""
    await client.post(BATCHES, json=batch(activity(1)))
    response = await client.post(
        BATCHES,
        json=batch(activity(2), activity(1, duration_minutes=45), activity(3, duration_minutes=0)),
    )
    body: dict[str, Any] = response.json()
    assert [r["status"] for r in body["results"]] == ["success", "failed", "failed"]
    return body


async def test_retry_without_ignoring_constraints_fails_again(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    response = await retry(client, {"retry_indices": [1], "ignore_constraints": False})

    assert response.status_code == 200
    body = response.json()
    RetryResponse.model_validate(body)
    assert (body["inserted_count"], body["failed_count"]) == (1, 2)
    assert body["results"][0]["error"] == "unique_constraint_violation"
    assert (await client.get(f"{ACTIVITIES}/pa-001")).json()["duration_minutes"] == 120


async def test_ignore_constraints_updates_the_stored_activity(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    response = await retry(client, {"retry_indices": [1], "ignore_constraints": True})

    body = response.json()
    assert body["id"] == "batch-002"
    assert body["status"] == "completed"
    assert (body["inserted_count"], body["failed_count"]) == (2, 1)
    assert body["results"] == [{"index": 1, "activity_id": "pa-001", "status": "success"}]
    stored = (await client.get(f"{ACTIVITIES}/pa-001")).json()
    assert stored["duration_minutes"] == 45
    assert stored["version"] == 2
    detail = (await client.get(f"{BATCHES}/batch-002")).json()
    assert detail["results"][1] == {"index": 1, "activity_id": "pa-001", "status": "success"}
    assert detail["inserted_count"] == 2
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 2


async def test_retry_of_an_invalid_record_reports_the_same_validation_error(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    response = await retry(client, {"retry_indices": [2], "ignore_constraints": True})

    result = response.json()["results"][0]
    assert result["error"] == "validation_error"
    assert '"duration_minutes"' in result["message"]
    assert response.json()["failed_count"] == 2


async def test_retry_updates_updated_at_and_lists_new_counts(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    created_at = (await client.get(f"{BATCHES}/batch-002")).json()["created_at"]
    response = await retry(client, {"retry_indices": [2, 1, 1], "ignore_constraints": True})

    assert response.json()["updated_at"] >= created_at
    assert [r["index"] for r in response.json()["results"]] == [1, 2]
    listed = (await client.get(BATCHES)).json()["data"][0]
    assert (listed["inserted_count"], listed["failed_count"]) == (2, 1)


async def test_ignore_constraints_defaults_to_false(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    response = await retry(client, {"retry_indices": [1]})

    assert response.json()["results"][0]["status"] == "failed"


async def test_retrying_a_record_that_succeeded_is_422(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    response = await retry(client, {"retry_indices": [0, 1], "ignore_constraints": True})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "record_not_failed"
    assert error["details"] == {"indices": [0]}
    assert (await client.get(f"{ACTIVITIES}/pa-001")).json()["version"] == 1


async def test_retrying_an_index_out_of_range_is_422(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    response = await retry(client, {"retry_indices": [1, 3, 99]})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_record_index"
    assert error["details"] == {"indices": [3, 99]}
    assert "0 to 2" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"retry_indices": []},
        {"retry_indices": [-1]},
        {"retry_indices": ["1"]},
        {"retry_indices": 1},
        {"retry_indices": [1], "ignore_constraints": "yes"},
        {"retry_indices": [1], "unexpected": True},
        [1],
    ],
)
async def test_invalid_retry_bodies_are_422(
    client: httpx.AsyncClient, collided: dict[str, Any], body: Any
) -> None:
    response = await retry(client, body)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_body"


async def test_malformed_retry_json_is_400(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    response = await client.put(
        f"{BATCHES}/batch-002", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_retry_of_unknown_batch_is_404(client: httpx.AsyncClient) -> None:
    response = await retry(client, {"retry_indices": [0]}, batch_id="batch-404")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_batch_recovered_from_total_failure_becomes_completed(
    client: httpx.AsyncClient,
) -> None:
    await client.post(BATCHES, json=batch(activity(1)))
    failed = (await client.post(BATCHES, json=batch(activity(1, duration_minutes=5)))).json()
    assert failed["status"] == "failed"

    body = (await retry(client, {"retry_indices": [0], "ignore_constraints": True})).json()

    assert body["status"] == "completed"
    assert (body["inserted_count"], body["failed_count"]) == (1, 0)


async def test_indices_far_past_the_batch_are_unknown_not_a_fault(
    client: httpx.AsyncClient, collided: dict[str, Any]
) -> None:
    response = await retry(client, {"retry_indices": [1, 2**40]})

    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"indices": [2**40]}


async def test_created_records_keep_no_result_row_yet_every_read_lists_them(
    client: httpx.AsyncClient, started: FastAPI, collided: dict[str, Any]
) -> None:
    fixed = {"retry_indices": [2], "ignore_constraints": False}
    await client.put(f"{BATCHES}/batch-002", json=fixed)  # still invalid: stays failed
    updated = await retry(client, {"retry_indices": [1], "ignore_constraints": True})

    stored = await _result_rows(started)
    listed = (await client.get(f"{BATCHES}/batch-002")).json()["results"]

    # Stored: the failure and the update; the records batch-001/002 created are read from them.
    assert stored == [(2, 1, "updated"), (2, 2, "failed")]
    assert [(r["index"], r["status"]) for r in listed] == [
        (0, "success"),
        (1, "success"),
        (2, "failed"),
    ]
    assert listed[0]["activity_id"] == collided["results"][0]["activity_id"]
    assert listed[1]["activity_id"] == updated.json()["results"][0]["activity_id"]
    first = (await client.get(f"{BATCHES}/batch-001")).json()["results"]
    assert [(r["index"], r["status"], r["activity_id"]) for r in first] == [
        (0, "success", listed[1]["activity_id"])
    ]


async def _result_rows(app: FastAPI) -> list[tuple[int, int, str]]:
    """(job id, index, status) of every stored result row."""
    async with app.state.db.read() as conn:
        query = "SELECT job_id, idx, status FROM job_results ORDER BY job_id, idx"
        return [tuple(row) for row in (await conn.exec_driver_sql(query)).all()]
