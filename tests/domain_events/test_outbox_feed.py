"""Every change yields exactly the right event, with old and new; none for failed records."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from loadbay.storage import outbox
from tests.api.operator.helpers import API, deposit, player, use_template
from tests.conftest import ClientFactory
from tests.domain_events.helpers import feed
from tests.factories import ACTIVITIES, BATCHES, activity, batch, outbox_event


async def test_a_mixed_batch_yields_events_for_its_inserted_records_only(
    client: httpx.AsyncClient,
) -> None:
    body = (
        await client.post(
            BATCHES,
            json=batch(activity(1), activity(2, duration_minutes=0), activity(1), activity(3)),
        )
    ).json()

    events = await feed(client)

    ids = {r["activity_id"] for r in body["results"] if r["status"] == "success"}
    assert len(events) == 2
    assert {e["new"]["id"] for e in events} == ids
    for event in events:
        assert event["type"] == "CREATE"
        assert event["tenant"] == "default"
        assert event["collection"] == "activities"
        assert event["jobId"] == "batch-001"
        assert "old" not in event
        assert event["key"] == f"{event['new']['mentor_id']}:group_workshop:2026-03-28"
        assert event["new"]["duration_minutes"] == 120
        assert event["new"]["version"] == 1
        assert "tenant_id" not in event["new"]
    assert len({e["eventId"] for e in events}) == 2


async def test_a_batch_meeting_stored_keys_yields_events_for_its_new_records_only(
    client: httpx.AsyncClient,
) -> None:
    """On PostgreSQL the batch's first attempt, a plain INSERT, meets the stored key and is
    rolled back; only the write that skips stored keys may leave events."""
    await client.post(BATCHES, json=batch(activity(1)))
    before = await feed(client)

    body = (await client.post(BATCHES, json=batch(activity(2), activity(1), activity(3)))).json()
    events = (await feed(client))[len(before) :]

    assert [r["status"] for r in body["results"]] == ["success", "failed", "success"]
    assert body["results"][1]["error"] == "unique_constraint_violation"
    created = {r["activity_id"] for r in body["results"] if r["status"] == "success"}
    assert sorted(e["new"]["id"] for e in events) == sorted(created)
    assert [e["new"]["mentor_id"] for e in events] == ["mentor-2", "mentor-3"]


async def test_a_retry_that_updates_yields_old_and_new(client: httpx.AsyncClient) -> None:
    await client.post(BATCHES, json=batch(activity(1)))
    await client.post(BATCHES, json=batch(activity(1, duration_minutes=45)))

    await client.put(
        f"{BATCHES}/batch-002", json={"retry_indices": [0], "ignore_constraints": True}
    )

    create, update = await feed(client)
    assert (create["type"], update["type"]) == ("CREATE", "UPDATE")
    assert update["jobId"] == "batch-002"
    assert update["old"]["duration_minutes"] == 120
    assert update["new"]["duration_minutes"] == 45
    assert (update["old"]["version"], update["new"]["version"]) == (1, 2)
    assert update["new"]["id"] == update["old"]["id"] == create["new"]["id"]
    assert update["new"]["created_at"] == update["old"]["created_at"]


async def test_operator_collections_yield_their_events(make_client: ClientFactory) -> None:
    client = await make_client(tenant="op")
    await use_template(client)
    await client.post(f"{API}/batch/entities", json=[player(1)])
    await client.post(f"{API}/batch/entities", json=[player(1, status="closed"), player(2)])
    await client.post(f"{API}/batch/events", json=[deposit(1, eventId="tx1"), deposit(9)])
    await client.post(f"{API}/batch/events", json=[deposit(1, eventId="tx1")])
    await client.post(
        f"{API}/batch/states",
        json=[{"externalId": "player_001", "stateKey": "kyc_status", "value": "verified"}],
    )

    events = await feed(client)

    summary = [(e["collection"], e["type"], e["key"]) for e in events]
    assert summary == [
        ("entities", "CREATE", "player_001"),
        ("entities", "UPDATE", "player_001"),
        ("entities", "CREATE", "player_002"),
        ("events", "CREATE", "tx1"),
        ("states", "CREATE", "player_001:kyc_status"),
    ]
    update = events[1]
    assert update["old"]["data"]["status"] == "active"
    assert update["new"]["data"]["status"] == "closed"
    assert update["new"]["entity_type"] == "player"
    assert events[3]["new"]["data"]["amount"] == 100


async def test_event_ids_are_uuids_unique_across_writes_and_collections(
    make_client: ClientFactory,
) -> None:
    client = await make_client(tenant="op")
    await use_template(client)
    await client.post(f"{API}/batch/entities", json=[player(1), player(2)])
    await client.post(f"{API}/batch/entities", json=[player(1, status="closed")])
    await client.post(f"{API}/batch/events", json=[deposit(1)])
    await client.post(BATCHES, json=batch(activity(1), activity(2)))

    events = await feed(client)

    ids = [uuid.UUID(e["eventId"]) for e in events]
    assert len(ids) == 6
    assert [str(i) for i in ids] == [e["eventId"] for e in events]  # canonical text
    assert {(i.version, i.variant) for i in ids} == {(8, uuid.RFC_4122)}
    assert len(set(ids)) == len(ids)


async def test_event_timestamps_read_as_the_api_writes_them(make_client: ClientFactory) -> None:
    client = await make_client(tenant="op")
    await use_template(client)
    await client.post(f"{API}/batch/entities", json=[player(1)])
    await client.post(f"{API}/batch/entities", json=[player(1, status="closed")])

    _, update = await feed(client)

    stamps = [
        update[side][field] for side in ("old", "new") for field in ("created_at", "updated_at")
    ]
    # isoformat's own shape: fraction only when non-zero, and the UTC offset spelt out.
    assert all(datetime.fromisoformat(s).isoformat() == s for s in stamps)
    assert all(s.endswith("+00:00") for s in stamps)
    old_created, old_updated, new_created, new_updated = stamps
    assert new_created == old_created
    assert datetime.fromisoformat(new_updated) > datetime.fromisoformat(old_updated)


async def test_events_carry_awkward_values_exactly(make_client: ClientFactory) -> None:
    client = await make_client(tenant="op")
    await use_template(client)
    awkward = 'NUL \u0000, quote ", backslash \\, newline \n, emoji \U0001f600, ü'
    first = player(1, first_name=awkward, tags=[1.5, None, True, {"nested": awkward}])
    await client.post(f"{API}/batch/entities", json=[first])
    await client.post(f"{API}/batch/entities", json=[player(1, first_name="plain")])
    # Activity fields refuse NUL characters; every other awkward character goes in.
    coordinator = awkward.replace("\u0000", "")
    await client.post(BATCHES, json=batch(activity(1, coordinator_id=coordinator)))

    created, updated, activity_created = await feed(client)

    assert created["new"]["data"] == first["data"]
    assert updated["old"]["data"] == first["data"]
    assert updated["new"]["data"]["first_name"] == "plain"
    assert activity_created["new"]["coordinator_id"] == coordinator
    assert activity_created["new"]["activity_date"] == "2026-03-28"
    stored = (await client.get(f"{ACTIVITIES}/{activity_created['new']['id']}")).json()
    event_time = datetime.fromisoformat(activity_created["new"]["created_at"])
    assert event_time.replace(microsecond=0) == datetime.fromisoformat(stored["created_at"])


async def test_erasure_yields_a_delete_event_without_the_data(make_client: ClientFactory) -> None:
    client = await make_client(tenant="op")
    await use_template(client)
    await client.post(f"{API}/batch/entities", json=[player(1)])

    await client.delete(f"{API}/entities/player/player_001")

    deletion = (await feed(client))[-1]
    # Waiting for the relay like the captured events: the CREATE and the DELETE.
    assert "loadbay_outbox_pending_events 2" in (await client.get("/metrics")).text
    assert deletion["type"] == "DELETE"
    assert deletion["old"] == {"externalId": "player_001", "entityType": "player", "erased": True}
    assert "new" not in deletion
    assert "example.com" not in str(deletion)


async def test_the_feed_pages_by_cursor_and_filters(client: httpx.AsyncClient) -> None:
    await client.post(BATCHES, json=batch(*(activity(n) for n in range(5))))

    first = (await client.get("/events", params={"limit": 2})).json()
    second = (await client.get("/events", params={"limit": 2, "after": first["cursor"]})).json()
    rest = (await client.get("/events", params={"after": second["cursor"]})).json()
    none = (await client.get("/events", params={"collection": "entities"})).json()

    ids = [e["eventId"] for e in first["data"] + second["data"] + rest["data"]]
    assert len(ids) == len(set(ids)) == 5
    assert len(rest["data"]) == 1
    assert none == {"data": [], "cursor": None}
    again = (await client.get("/events", params={"after": rest["cursor"]})).json()
    assert again == {"data": [], "cursor": rest["cursor"]}


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
async def test_paging_reads_every_event_once_in_order(
    client: httpx.AsyncClient, limit: int
) -> None:
    """Pages end inside the events of one write (a row of them on PostgreSQL) and across
    writes; however they fall, paging reads what one page reads."""
    await client.post(BATCHES, json=batch(*(activity(n) for n in range(3))))
    await client.post(BATCHES, json=batch(*(activity(n) for n in range(3, 7))))
    whole = (await client.get("/events", params={"limit": 100})).json()["data"]

    paged, cursor = [], None
    for _ in range(10):
        params = {"limit": limit} if cursor is None else {"limit": limit, "after": cursor}
        page = (await client.get("/events", params=params)).json()
        if not page["data"]:
            break
        assert len(page["data"]) == min(limit, len(whole) - len(paged))
        paged += page["data"]
        cursor = page["cursor"]

    assert len(whole) == 7
    assert paged == whole


async def test_a_cursor_past_the_end_of_its_row_reads_on_from_the_next(
    client: httpx.AsyncClient,
) -> None:
    """A cursor names an outbox row and a place in it; a place past the row's last event (a
    cursor made by hand) reads on from the next row, never an empty page short of the end."""
    await client.post(BATCHES, json=batch(*(activity(n) for n in range(3))))
    await client.post(BATCHES, json=batch(activity(3)))
    whole = (await client.get("/events", params={"limit": 100})).json()["data"]
    cursors, cursor = [], None
    for _ in whole:
        params = {"limit": 1} if cursor is None else {"limit": 1, "after": cursor}
        cursor = (await client.get("/events", params=params)).json()["cursor"]
        cursors.append(cursor)
    first_row = cursors[0].partition(".")[0]
    last_of_first_row = cursors.index(first_row)

    page = await client.get("/events", params={"limit": 1, "after": f"{first_row}.99"})

    assert page.json()["data"] == [whole[last_of_first_row + 1]]


@pytest.mark.parametrize("cursor", ["abc", "-1", "1" * 30, "1.", ".1", "1.x", "1.2.3", "\u0661"])
async def test_a_bad_cursor_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/events", params={"after": cursor})

    assert response.status_code == 422


async def test_tenants_see_only_their_events(make_client: ClientFactory) -> None:
    alice, bob = await make_client(tenant="alice"), await make_client(tenant="bob")
    await alice.post(BATCHES, json=batch(activity(1)))

    assert len(await feed(alice)) == 1
    assert await feed(bob) == []


async def test_metrics_show_the_outbox_lag(client: httpx.AsyncClient) -> None:
    await client.post(BATCHES, json=batch(activity(1), activity(2)))

    text = (await client.get("/metrics")).text

    assert "loadbay_outbox_pending_events 2" in text
    samples = dict(line.split() for line in text.splitlines() if not line.startswith("#"))
    age = float(samples["loadbay_outbox_oldest_pending_seconds"])
    assert 0 < age < 60  # the first pending event's age: 0 would mean none was found


async def test_the_feed_never_passes_an_event_still_to_commit(
    client: httpx.AsyncClient, started: FastAPI, backend: str
) -> None:
    """PostgreSQL: an event whose id is taken first but that commits last holds back the
    feed's later ids until it commits; a cursor would otherwise pass over it for good."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: its ids are in commit order")
    late = outbox_event("late")
    async with started.state.db.write() as unit:
        await outbox.add_events(unit.conn, [late])
        assert (await client.post(BATCHES, json=batch(activity(1)))).status_code == 201
        while_open = await feed(client)
    after_commit = await feed(client)

    assert while_open == []
    assert [e["key"] for e in after_commit] == [
        "late",
        f"{activity(1)['mentor_id']}:group_workshop:2026-03-28",
    ]
