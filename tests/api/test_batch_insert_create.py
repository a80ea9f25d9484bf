"""POST /api/v1/batch-inserts: per-record results, duplicates, validation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loadbay.api.batch_insert_schemas import BatchCreated
from tests.factories import ACTIVITIES, BATCHES, activity, batch


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in activity().items() if k != field}


async def post_batch(client: httpx.AsyncClient, *records: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(BATCHES, json=batch(*records))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    BatchCreated.model_validate(body)
    return body


async def test_inserts_every_record_and_reports_each(client: httpx.AsyncClient) -> None:
    response = await client.post(BATCHES, json=batch(activity(1), activity(2)))

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": "batch-001",
        "record_count": 2,
        "status": "completed",
        "inserted_count": 2,
        "failed_count": 0,
        "results": [
            {"index": 0, "activity_id": "pa-001", "status": "success"},
            {"index": 1, "activity_id": "pa-002", "status": "success"},
        ],
    }
    assert response.headers["location"] == f"{BATCHES}/batch-001"
    stored = (await client.get(f"{ACTIVITIES}/pa-002")).json()
    assert stored["mentor_id"] == "mentor-2"
    assert stored["activity_date"] == "2026-03-28"
    assert stored["duration_minutes"] == 120


async def test_ids_keep_counting_across_batches(client: httpx.AsyncClient) -> None:
    await post_batch(client, activity(1), activity(2))
    second = await post_batch(client, activity(3))

    assert second["id"] == "batch-002"
    assert second["results"][0]["activity_id"] == "pa-003"


async def test_duplicate_inside_the_batch_fails_the_later_record(
    client: httpx.AsyncClient,
) -> None:
    body = await post_batch(
        client, activity(1), activity(2), activity(1, coordinator_id="other"), activity(3)
    )

    assert [r["status"] for r in body["results"]] == ["success", "success", "failed", "success"]
    failed = body["results"][2]
    assert failed["activity_id"] is None
    assert failed["error"] == "unique_constraint_violation"
    assert "record 0" in failed["message"]
    assert (body["inserted_count"], body["failed_count"]) == (3, 1)
    listed = (await client.get(ACTIVITIES)).json()
    assert listed["pagination"]["total"] == 3
    assert {a["coordinator_id"] for a in listed["data"]} == {"coord-42"}


async def test_duplicate_of_a_stored_activity_fails_whoever_registers_it(
    client: httpx.AsyncClient,
) -> None:
    await post_batch(client, activity(1))
    body = await post_batch(client, activity(2), activity(1, coordinator_id="coord-99"))

    assert body["results"][0]["status"] == "success"
    assert body["results"][1] == {
        "index": 1,
        "activity_id": None,
        "status": "failed",
        "error": "unique_constraint_violation",
        "message": body["results"][1]["message"],
    }
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 2


async def test_same_mentor_on_another_date_or_type_is_another_activity(
    client: httpx.AsyncClient,
) -> None:
    body = await post_batch(
        client,
        activity(1),
        activity(1, activity_date="2026-03-29"),
        activity(1, activity_type="one_to_one"),
    )
    assert body["inserted_count"] == 3


async def test_all_records_failing_marks_the_batch_failed(client: httpx.AsyncClient) -> None:
    body = await post_batch(client, activity(1, duration_minutes=0), {"bogus": True})

    assert body["status"] == "failed"
    assert (body["inserted_count"], body["failed_count"]) == (0, 2)


@pytest.mark.parametrize(
    ("record", "field", "fragment"),
    [
        (activity(mentor_id=None), "mentor_id", "missing required field"),
        (
            {k: v for k, v in activity().items() if k != "coordinator_id"},
            "coordinator_id",
            "missing",
        ),
        (activity(mentor_id=17), "mentor_id", "must be a string"),
        (activity(activity_type="   "), "activity_type", "must not be blank"),
        (activity(activity_type="x" * 256), "activity_type", "at most 255 characters"),
        (activity(mentor_id="mentor\u0000x"), "mentor_id", "NUL"),
        (activity(activity_date="28/03/2026"), "activity_date", "YYYY-MM-DD"),
        (activity(activity_date="2026-02-30"), "activity_date", "not a valid calendar date"),
        (activity(activity_date=20260328), "activity_date", "YYYY-MM-DD"),
        (activity(duration_minutes=0), "duration_minutes", "positive"),
        (activity(duration_minutes=-5), "duration_minutes", "positive"),
        (activity(duration_minutes=1.5), "duration_minutes", "integer"),
        (activity(duration_minutes="120"), "duration_minutes", "integer"),
        (activity(duration_minutes=True), "duration_minutes", "integer"),
        (activity(duration_minutes=2**31), "duration_minutes", "at most"),
        (activity(duraton_minutes=5), "duraton_minutes", "unknown field"),
    ],
)
async def test_invalid_record_fails_alone_naming_the_field(
    client: httpx.AsyncClient, record: dict[str, Any], field: str, fragment: str
) -> None:
    body = await post_batch(client, activity(1), record)

    assert body["results"][0]["status"] == "success"
    failed = body["results"][1]
    assert failed["status"] == "failed"
    assert failed["error"] == "validation_error"
    assert f'"{field}"' in failed["message"]
    assert fragment in failed["message"]
    assert (await client.get(ACTIVITIES)).json()["pagination"]["total"] == 1


@pytest.mark.parametrize("record", [None, 5, "text", [activity(1)]])
async def test_a_record_that_is_not_an_object_fails_alone(
    client: httpx.AsyncClient, record: Any
) -> None:
    body = await post_batch(client, record, activity(1))

    assert body["results"][0]["error"] == "validation_error"
    assert body["results"][0]["message"] == "record must be a JSON object"
    assert body["results"][1]["status"] == "success"


async def test_a_nul_byte_in_a_field_name_is_reported_escaped(client: httpx.AsyncClient) -> None:
    body = await post_batch(client, {**activity(1), "bad\u0000name": 1})

    assert body["results"][0]["error"] == "validation_error"
    assert "\\u0000" in body["results"][0]["message"]


async def test_exactly_the_maximum_number_of_records_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    body = await post_batch(client, *(activity(n) for n in range(1000)))

    assert body["inserted_count"] == 1000
    assert len({r["activity_id"] for r in body["results"]}) == 1000
    assert [r["index"] for r in body["results"]] == list(range(1000))
