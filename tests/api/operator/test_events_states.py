"""Batch events and states: references to entities, idempotent events, upserted states."""

from __future__ import annotations

import httpx
import pytest

from tests.api.operator.helpers import API, deposit


async def events_of(client: httpx.AsyncClient, n: int) -> list[dict]:
    response = await client.get(
        f"{API}/entities/player/player_{n:03d}/events", params={"limit": 100}
    )
    assert response.status_code == 200
    data: list[dict] = response.json()["data"]
    return data


async def test_events_of_existing_entities_go_in(players: httpx.AsyncClient) -> None:
    events = [
        deposit(1),
        {
            "externalId": "player_001",
            "eventType": "game_activity",
            "data": {"game_id": "european-roulette", "bet_amount": 10, "win_amount": 25},
        },
        deposit(2, 50),
    ]

    body = (await players.post(f"{API}/batch/events", json=events)).json()

    assert body["success"] is True
    assert {k: body["data"][k] for k in ("succeeded", "failed", "errors")} == {
        "succeeded": 3,
        "failed": 0,
        "errors": [],
    }
    stored = await events_of(players, 1)
    assert [e["eventType"] for e in stored] == ["transaction", "game_activity"]
    assert stored[0]["data"]["amount"] == 100


@pytest.mark.parametrize(
    ("event", "code", "fragment"),
    [
        (deposit(99), "ENTITY_NOT_FOUND", "externalId"),
        ({**deposit(1), "eventType": "lottery"}, "UNKNOWN_EVENT_TYPE", "lottery"),
        (
            {**deposit(1), "data": {"type": "deposit", "currency": "GBP"}},
            "VALIDATION_FAILED",
            'Missing required field: "amount"',
        ),
        (
            {"externalId": "player_001", "eventType": "game_activity", "data": {"bet_amount": 1}},
            "VALIDATION_FAILED",
            'Missing required field: "game_id"',
        ),
        ({**deposit(1), "eventId": 5}, "VALIDATION_FAILED", '"eventId"'),
    ],
)
async def test_bad_events_fail_alone(
    players: httpx.AsyncClient, event: dict, code: str, fragment: str
) -> None:
    body = (await players.post(f"{API}/batch/events", json=[deposit(2), event])).json()

    assert body["data"]["succeeded"] == 1
    (error,) = body["data"]["errors"]
    assert (error["index"], error["code"]) == (1, code)
    assert fragment in error["message"]


async def test_event_id_makes_an_event_idempotent(players: httpx.AsyncClient) -> None:
    first = [deposit(1, eventId="tx-1"), deposit(1, 5, eventId="tx-2")]
    await players.post(f"{API}/batch/events", json=first)

    again = await players.post(
        f"{API}/batch/events", json=[deposit(1, eventId="tx-1"), deposit(1, eventId="tx-1")]
    )

    assert again.json()["data"]["succeeded"] == 2
    stored = await events_of(players, 1)
    assert sorted(e["eventId"] for e in stored) == ["tx-1", "tx-2"]


async def test_events_without_event_id_are_all_kept(players: httpx.AsyncClient) -> None:
    await players.post(f"{API}/batch/events", json=[deposit(1), deposit(1)])

    assert len(await events_of(players, 1)) == 2


async def test_up_to_5000_events_per_request(players: httpx.AsyncClient) -> None:
    too_many = await players.post(f"{API}/batch/events", json=[deposit(1)] * 5001)
    accepted = await players.post(
        f"{API}/batch/events", json=[deposit(1 + n % 3, n) for n in range(5000)]
    )

    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "INVALID_INPUT"
    assert accepted.json()["data"]["succeeded"] == 5000


async def test_event_listing_pages(players: httpx.AsyncClient) -> None:
    await players.post(
        f"{API}/batch/events", json=[deposit(1, n, eventId=f"e{n}") for n in range(5)]
    )

    page = (
        await players.get(
            f"{API}/entities/player/player_001/events", params={"page": 2, "limit": 2}
        )
    ).json()

    assert [e["eventId"] for e in page["data"]] == ["e2", "e3"]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 5}


async def test_states_upsert_per_entity_and_key(players: httpx.AsyncClient) -> None:
    states = [
        {
            "externalId": "player_001",
            "stateKey": "balance",
            "value": {"amount": 250, "currency": "GBP"},
        },
        {"externalId": "player_001", "stateKey": "kyc_status", "value": "verified"},
        {"externalId": "player_002", "stateKey": "loyalty_tier", "value": "silver"},
    ]
    first = (await players.post(f"{API}/batch/states", json=states)).json()
    second = (
        await players.post(
            f"{API}/batch/states",
            json=[{"externalId": "player_001", "stateKey": "kyc_status", "value": "expired"}],
        )
    ).json()

    assert first["data"]["succeeded"] == 3
    assert second["data"]["succeeded"] == 1
    entity = (await players.get(f"{API}/entities/player/player_001")).json()["data"]
    assert entity["states"]["balance"]["value"] == {"amount": 250, "currency": "GBP"}
    assert entity["states"]["kyc_status"]["value"] == "expired"
    assert entity["states"]["kyc_status"]["version"] == 2


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (
            {
                "externalId": "player_009",
                "stateKey": "balance",
                "value": {"amount": 1, "currency": "EUR"},
            },
            "ENTITY_NOT_FOUND",
        ),
        (
            {"externalId": "player_001", "stateKey": "favourite_colour", "value": "red"},
            "UNKNOWN_STATE_KEY",
        ),
        ({"externalId": "player_001", "stateKey": "risk_score", "value": 101}, "VALIDATION_FAILED"),
        (
            {"externalId": "player_001", "stateKey": "kyc_status", "value": None},
            "VALIDATION_FAILED",
        ),
        ({"externalId": "player_001", "stateKey": "kyc_status"}, "VALIDATION_FAILED"),
    ],
)
async def test_bad_states_fail_alone(players: httpx.AsyncClient, state: dict, code: str) -> None:
    ok = {"externalId": "player_002", "stateKey": "risk_score", "value": 12.5}

    body = (await players.post(f"{API}/batch/states", json=[state, ok])).json()

    assert body["data"]["succeeded"] == 1
    assert body["data"]["errors"][0]["code"] == code


async def test_a_state_may_hold_json_null_when_the_template_allows(
    players: httpx.AsyncClient,
) -> None:
    template = {"entityTypes": {"player": {"schema": {}}}, "stateKeys": {"note": {"schema": {}}}}
    await players.put(f"{API}/settings", json={"template": template})

    body = (
        await players.post(
            f"{API}/batch/states",
            json=[{"externalId": "player_001", "stateKey": "note", "value": None}],
        )
    ).json()

    assert body["data"]["succeeded"] == 1
    entity = (await players.get(f"{API}/entities/player/player_001")).json()["data"]
    assert entity["states"]["note"]["value"] is None
