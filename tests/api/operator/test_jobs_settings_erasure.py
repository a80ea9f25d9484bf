"""Jobs, templates, reads and erasure of the operator data API."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.operator.helpers import API, deposit, player
from tests.conftest import ClientFactory

MILLIS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


async def test_job_of_a_batch_has_the_contract_shape(operator: httpx.AsyncClient) -> None:
    bad = player(2)
    del bad["data"]["email"]
    job_id = (await operator.post(f"{API}/batch/entities", json=[player(1), bad])).json()["data"][
        "jobId"
    ]

    response = await operator.get(f"{API}/batch/jobs/{job_id}")

    assert response.status_code == 200
    job = response.json()["data"]
    assert response.json()["success"] is True
    assert job["id"] == job_id
    assert job["type"] == "batch_ingest_entities"
    assert job["status"] == "completed"
    assert job["progress"] == 100
    assert job["error"] is None
    assert job["output"] == {
        "succeeded": 1,
        "failed": 1,
        "errors": [
            {
                "index": 1,
                "externalId": "player_002",
                "code": "VALIDATION_FAILED",
                "message": 'Missing required field: "email"',
            }
        ],
    }
    assert MILLIS.fullmatch(job["created_at"])
    assert MILLIS.fullmatch(job["completed_at"])


async def test_events_and_states_batches_are_jobs_too(players: httpx.AsyncClient) -> None:
    job_id = (await players.post(f"{API}/batch/events", json=[deposit(1)])).json()["data"]["jobId"]

    job = (await players.get(f"{API}/batch/jobs/{job_id}")).json()["data"]

    assert job["type"] == "batch_ingest_events"
    assert job["output"]["succeeded"] == 1


@pytest.mark.parametrize(
    "job_id",
    ["job_00000000000000ff", "job_ffffffffffffffff", "job_1", "batch-001", "nope"],
)
async def test_unknown_job_is_404(operator: httpx.AsyncClient, job_id: str) -> None:
    response = await operator.get(f"{API}/batch/jobs/{job_id}")

    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": {"code": "NOT_FOUND", "message": response.json()["error"]["message"]},
    }


async def test_batches_before_a_template_are_refused(make_client: ClientFactory) -> None:
    client = await make_client(tenant="fresh")

    for path in ("batch/entities", "batch/events", "batch/states", "entities"):
        response = await client.post(f"{API}/{path}", json=[player(1)])
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "TEMPLATE_NOT_CONFIGURED"
    settings = await client.get(f"{API}/settings")
    assert settings.json()["error"]["code"] == "TEMPLATE_NOT_CONFIGURED"


async def test_settings_round_trip_the_built_in_template(make_client: ClientFactory) -> None:
    client = await make_client(tenant="fresh")

    put = await client.put(f"{API}/settings", json={"templateId": "igaming"})
    got = await client.get(f"{API}/settings")

    assert put.status_code == 200
    data = got.json()["data"]
    assert data["templateId"] == "igaming"
    assert set(data["template"]["eventTypes"]) >= {"transaction", "game_activity"}
    assert set(data["template"]["stateKeys"]) == {
        "balance",
        "kyc_status",
        "risk_score",
        "loyalty_tier",
    }
    assert MILLIS.fullmatch(data["updatedAt"])


async def test_a_custom_template_changes_validation(operator: httpx.AsyncClient) -> None:
    template = {
        "templateId": "strict-shop",
        "entityTypes": {
            "player": {
                "schema": {
                    "type": "object",
                    "required": ["vip"],
                    "properties": {"vip": {"type": "boolean"}},
                }
            }
        },
        "eventTypes": {"purchase": {"schema": {"type": "object", "required": ["sku"]}}},
        "stateKeys": {"cart": {"schema": {"type": "array"}}},
    }
    response = await operator.put(f"{API}/settings", json={"template": template})

    assert response.json()["data"]["templateId"] == "strict-shop"
    body = (await operator.post(f"{API}/batch/entities", json=[player(1)])).json()
    assert body["data"]["errors"][0]["message"] == 'Missing required field: "vip"'
    ok = {"entityType": "player", "externalId": "p", "data": {"vip": True}}
    assert (await operator.post(f"{API}/batch/entities", json=[ok])).json()["data"][
        "succeeded"
    ] == 1
    events = (await operator.post(f"{API}/batch/events", json=[deposit(1)])).json()
    assert events["data"]["errors"][0]["code"] == "UNKNOWN_EVENT_TYPE"


@pytest.mark.parametrize(
    "body",
    [
        {"templateId": "poker"},
        {"templateId": 5},
        {"template": {"entityTypes": {}}},
        {"template": {"entityTypes": {"p": {"schema": {"type": "nonsense"}}}}},
        {"template": {"entityTypes": {"bad name!": {"schema": {}}}}},
        {"template": {"entityTypes": {"p": {"schema": {}}}, "extra": 1}},
        {"templateId": "igaming", "template": {}},
        {},
        [],
    ],
)
async def test_invalid_settings_are_invalid_input(
    operator: httpx.AsyncClient, body: object
) -> None:
    response = await operator.put(f"{API}/settings", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_INPUT"
    assert (await operator.get(f"{API}/settings")).json()["data"]["templateId"] == "igaming"


async def test_entity_read_has_its_states(players: httpx.AsyncClient) -> None:
    await players.post(
        f"{API}/batch/states",
        json=[{"externalId": "player_003", "stateKey": "risk_score", "value": 42}],
    )

    entity = (await players.get(f"{API}/entities/player/player_003")).json()["data"]

    assert entity["externalId"] == "player_003"
    assert entity["entityType"] == "player"
    assert entity["states"]["risk_score"]["value"] == 42
    assert (await players.get(f"{API}/entities/affiliate/player_003")).status_code == 404


async def test_erasure_removes_everything_and_blocks_later_events(
    players: httpx.AsyncClient,
) -> None:
    await players.post(f"{API}/batch/events", json=[deposit(1), deposit(1, 7)])
    await players.post(
        f"{API}/batch/states",
        json=[{"externalId": "player_001", "stateKey": "loyalty_tier", "value": "gold"}],
    )

    erased = await players.delete(f"{API}/entities/player/player_001")

    assert erased.status_code == 200
    data = erased.json()["data"]
    assert (data["eventsErased"], data["statesErased"]) == (2, 1)
    assert MILLIS.fullmatch(data["erasedAt"])
    assert (await players.get(f"{API}/entities/player/player_001")).status_code == 404
    assert (await players.get(f"{API}/entities/player/player_001/events")).status_code == 404
    later = (await players.post(f"{API}/batch/events", json=[deposit(1)])).json()
    assert later["data"]["errors"][0]["code"] == "ENTITY_NOT_FOUND"
    assert (await players.delete(f"{API}/entities/player/player_001")).status_code == 404
    other = (await players.get(f"{API}/entities/player/player_002")).json()["data"]
    assert other["externalId"] == "player_002"


async def test_erasure_needs_the_admin_scope(
    players: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    writer = await make_client(tenant="op1", scopes=("ingest:batch", "read"))

    response = await writer.delete(f"{API}/entities/player/player_001")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
