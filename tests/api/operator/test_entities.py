"""POST /operator-data-api/batch/entities and /entities."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.operator.helpers import API, player
from tests.conftest import ClientFactory

JOB_ID = re.compile(r"job_[0-9a-f]{16}")


async def test_batch_upserts_and_reports_counts(operator: httpx.AsyncClient) -> None:
    response = await operator.post(f"{API}/batch/entities", json=[player(1), player(2)])

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert JOB_ID.fullmatch(body["data"]["jobId"])
    assert body["data"] | {"jobId": None} == {
        "jobId": None,
        "succeeded": 2,
        "failed": 0,
        "errors": [],
    }
    stored = (await operator.get(f"{API}/entities/player/player_002")).json()["data"]
    assert stored["data"]["email"] == "p2@example.com"
    assert stored["version"] == 1


async def test_partial_failure_names_the_missing_field(operator: httpx.AsyncClient) -> None:
    bob = player(2)
    del bob["data"]["email"]

    body = (await operator.post(f"{API}/batch/entities", json=[player(1), bob])).json()

    assert body["data"]["succeeded"] == 1
    assert body["data"]["failed"] == 1
    assert body["data"]["errors"] == [
        {
            "index": 1,
            "externalId": "player_002",
            "code": "VALIDATION_FAILED",
            "message": 'Missing required field: "email"',
        }
    ]
    missing = await operator.get(f"{API}/entities/player/player_002")
    assert missing.status_code == 404


async def test_second_upsert_updates_the_entity(operator: httpx.AsyncClient) -> None:
    await operator.post(f"{API}/batch/entities", json=[player(1)])

    again = await operator.post(f"{API}/batch/entities", json=[player(1, status="suspended")])

    assert again.json()["data"]["succeeded"] == 1
    stored = (await operator.get(f"{API}/entities/player/player_001")).json()["data"]
    assert stored["data"]["status"] == "suspended"
    assert stored["version"] == 2


async def test_last_duplicate_in_a_batch_wins(operator: httpx.AsyncClient) -> None:
    body = (
        await operator.post(
            f"{API}/batch/entities",
            json=[player(1, first_name="First"), player(1, first_name="Last")],
        )
    ).json()

    assert body["data"]["succeeded"] == 2
    stored = (await operator.get(f"{API}/entities/player/player_001")).json()["data"]
    assert stored["data"]["first_name"] == "Last"
    assert stored["version"] == 1


@pytest.mark.parametrize(
    ("record", "code", "fragment"),
    [
        ({**player(1), "entityType": "croupier"}, "UNKNOWN_ENTITY_TYPE", "Unknown entity type"),
        (player(1, email="not-an-email"), "VALIDATION_FAILED", 'Invalid field "email"'),
        (player(1, country="gb"), "VALIDATION_FAILED", 'Invalid field "country"'),
        (player(1, status="dormant"), "VALIDATION_FAILED", 'Invalid field "status"'),
        ({**player(1), "externalId": ""}, "VALIDATION_FAILED", '"externalId"'),
        ({**player(1), "externalId": "x" * 256}, "VALIDATION_FAILED", "at most 255"),
        ({**player(1), "externalId": "a\u0000b"}, "VALIDATION_FAILED", "NUL"),
        ({**player(1), "data": []}, "VALIDATION_FAILED", "must be a JSON object"),
        ({"entityType": "player", "data": {}}, "VALIDATION_FAILED", '"externalId"'),
        ({**player(1), "extra": 1}, "VALIDATION_FAILED", 'Unknown field: "extra"'),
        (
            {"entityType": "player", "data": {}, "extra": 1},
            "VALIDATION_FAILED",
            'Missing required field: "externalId"; Unknown field: "extra"',
        ),
        ({**player(1), "externalId": " \t\n"}, "VALIDATION_FAILED", "must not be blank"),
        ({**player(1), "entityType": "\u3000"}, "VALIDATION_FAILED", "must not be blank"),
        ("player_001", "VALIDATION_FAILED", "must be a JSON object"),
    ],
)
async def test_invalid_entities_fail_alone(
    operator: httpx.AsyncClient, record: object, code: str, fragment: str
) -> None:
    body = (await operator.post(f"{API}/batch/entities", json=[record, player(2)])).json()

    assert body["data"]["succeeded"] == 1
    (error,) = body["data"]["errors"]
    assert error["index"] == 0
    assert error["code"] == code
    assert fragment in error["message"]


async def test_nul_inside_data_is_stored_and_read_back(operator: httpx.AsyncClient) -> None:
    body = (
        await operator.post(f"{API}/batch/entities", json=[player(1, first_name="A\u0000B")])
    ).json()

    assert body["data"]["succeeded"] == 1
    stored = (await operator.get(f"{API}/entities/player/player_001")).json()["data"]
    assert stored["data"]["first_name"] == "A\u0000B"


async def test_an_external_id_belongs_to_one_entity_type(make_client: ClientFactory) -> None:
    client = await make_client(tenant="op2")
    template = {
        "entityTypes": {"player": {"schema": {}}, "affiliate": {"schema": {}}},
    }
    await client.put(f"{API}/settings", json={"template": template})
    await client.post(f"{API}/batch/entities", json=[{**player(1), "data": {}}])

    body = (
        await client.post(
            f"{API}/batch/entities",
            json=[{"entityType": "affiliate", "externalId": "player_001", "data": {}}],
        )
    ).json()

    assert body["data"]["errors"][0]["code"] == "ENTITY_TYPE_CONFLICT"
    stored = await client.get(f"{API}/entities/player/player_001")
    assert stored.json()["data"]["version"] == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{", "not valid JSON"),
        (b"{}", "must be a JSON array"),
        (b"[]", "must not be empty"),
        (b'"x"', "must be a JSON array"),
        (b"", "empty"),
    ],
)
async def test_malformed_batches_are_invalid_input(
    operator: httpx.AsyncClient, content: bytes, fragment: str
) -> None:
    response = await operator.post(
        f"{API}/batch/entities", content=content, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "INVALID_INPUT"
    assert fragment in body["error"]["message"]


async def test_more_than_1000_entities_is_invalid_input(operator: httpx.AsyncClient) -> None:
    response = await operator.post(f"{API}/batch/entities", json=[player(n) for n in range(1001)])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_INPUT"
    accepted = await operator.post(f"{API}/batch/entities", json=[player(n) for n in range(1000)])
    assert accepted.json()["data"]["succeeded"] == 1000


async def test_wrong_content_type_is_415(operator: httpx.AsyncClient) -> None:
    response = await operator.post(f"{API}/batch/entities", content=b"[]")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_single_upsert_creates_then_updates(operator: httpx.AsyncClient) -> None:
    created = await operator.post(f"{API}/entities", json=player(7))
    updated = await operator.post(f"{API}/entities", json=player(7, status="closed"))

    assert created.status_code == 201
    assert created.json() == {
        "success": True,
        "data": {"entityType": "player", "externalId": "player_007", "status": "created"},
    }
    assert updated.status_code == 200
    assert updated.json()["data"]["status"] == "updated"


async def test_single_upsert_of_an_invalid_entity_is_400(operator: httpx.AsyncClient) -> None:
    response = await operator.post(f"{API}/entities", json=player(1, email=5))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"
    assert response.json()["success"] is False
