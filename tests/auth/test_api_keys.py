"""Authentication and scopes on every surface; tenants are walls."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from loadbay.auth.keys import ApiKeys
from loadbay.storage.api_keys import count_keys
from loadbay.storage.database import Database
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow
from tests.api.operator.helpers import API, deposit, player, use_template
from tests.conftest import ClientFactory
from tests.factories import ACTIVITIES, BATCHES, activity, batch


@pytest.fixture
async def anonymous(make_client: ClientFactory) -> httpx.AsyncClient:
    return await make_client(scopes=())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", BATCHES),
        ("POST", BATCHES),
        ("GET", f"{BATCHES}/batch-001"),
        ("PUT", f"{BATCHES}/batch-001"),
        ("DELETE", f"{BATCHES}/batch-001"),
        ("GET", ACTIVITIES),
        ("GET", f"{ACTIVITIES}/pa-001"),
    ],
)
async def test_batch_insert_api_needs_a_key(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await anonymous.request(method, path, json=batch(activity(1)))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{API}/batch/entities"),
        ("POST", f"{API}/batch/events"),
        ("POST", f"{API}/batch/states"),
        ("POST", f"{API}/entities"),
        ("GET", f"{API}/batch/jobs/job_0000000000000001"),
        ("GET", f"{API}/settings"),
        ("PUT", f"{API}/settings"),
        ("GET", f"{API}/entities/player/p1"),
        ("GET", f"{API}/entities/player/p1/events"),
        ("DELETE", f"{API}/entities/player/p1"),
    ],
)
async def test_operator_api_needs_a_key(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await anonymous.request(method, path, json=[player(1)])

    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "error": {"code": "UNAUTHORIZED", "message": response.json()["error"]["message"]},
    }


async def test_health_and_docs_need_no_key(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/healthz")).status_code == 200
    assert (await anonymous.get("/openapi.json")).status_code == 200
    assert (await anonymous.get("/docs")).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer lb_live_nope", "Bearer ", "Basic dXNlcjpwYXNz", "lb_live_x", "Bearer " + "x" * 5000],
)
async def test_bad_credentials_are_401(started: FastAPI, authorization: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=started), base_url="http://t"
    ) as client:
        response = await client.get(BATCHES, headers={"Authorization": authorization})

    assert response.status_code == 401


async def test_revoked_key_stops_working(started: FastAPI, make_client: ClientFactory) -> None:
    client = await make_client()
    assert (await client.get(BATCHES)).status_code == 200
    (key,) = [k for k in await started.state.api_keys.list("default") if k.name == ""]

    assert await started.state.api_keys.revoke(key.prefix)

    assert (await client.get(BATCHES)).status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"lookup_cache_seconds": 0.3}])
async def test_a_key_revoked_by_another_process_is_refused_once_the_lookup_cache_expires(
    started: FastAPI, make_client: ClientFactory
) -> None:
    client = await make_client()
    assert (await client.get(BATCHES)).status_code == 200
    (key,) = [k for k in await started.state.api_keys.list("default") if k.name == ""]
    # `loadbay keys revoke` or another node: the same database, another ApiKeys.
    elsewhere = ApiKeys(started.state.db)

    assert await elsewhere.revoke(key.prefix)

    assert (await client.get(BATCHES)).status_code == 200  # still trusted by this process
    await asyncio.sleep(0.35)
    assert (await client.get(BATCHES)).status_code == 401


async def test_expired_key_is_refused(make_client: ClientFactory) -> None:
    expired = await make_client(expires_at=utcnow() - timedelta(seconds=1))
    valid = await make_client(expires_at=utcnow() + timedelta(days=1))

    assert (await expired.get(BATCHES)).status_code == 401
    assert (await valid.get(BATCHES)).status_code == 200


@pytest.mark.parametrize(
    ("scopes", "method", "path", "allowed"),
    [
        (("read",), "GET", BATCHES, True),
        (("read",), "POST", BATCHES, False),
        (("ingest:batch",), "POST", BATCHES, True),
        (("ingest:batch",), "GET", BATCHES, False),
        (("ingest:files",), "POST", BATCHES, False),
        (("ingest:batch",), "PUT", f"{API}/settings", False),
        (("read",), "GET", f"{API}/settings", True),
        (("admin",), "PUT", f"{API}/settings", True),
    ],
)
async def test_scopes(
    make_client: ClientFactory,
    scopes: tuple[str, ...],
    method: str,
    path: str,
    allowed: bool,
) -> None:
    admin = await make_client()
    await use_template(admin)
    client = await make_client(scopes=scopes)
    body = batch(activity(1)) if path == BATCHES else {"templateId": "igaming"}

    response = await client.request(method, path, json=body)

    if allowed:
        assert response.status_code < 400, response.text
    else:
        assert response.status_code == 403
        assert "scope" in response.json()["error"]["message"]


async def test_tenants_never_see_each_other(make_client: ClientFactory) -> None:
    alice = await make_client(tenant="alice")
    bob = await make_client(tenant="bob")
    created = (await alice.post(BATCHES, json=batch(activity(1)))).json()
    activity_id = created["results"][0]["activity_id"]
    await use_template(alice)
    await use_template(bob)
    job_id = (await alice.post(f"{API}/batch/entities", json=[player(1)])).json()["data"]["jobId"]

    assert (await bob.get(f"{BATCHES}/{created['id']}")).status_code == 404
    assert (
        await bob.put(f"{BATCHES}/{created['id']}", json={"retry_indices": [0]})
    ).status_code == 404
    assert (await bob.delete(f"{BATCHES}/{created['id']}")).status_code == 404
    assert (await bob.get(BATCHES)).json()["pagination"]["total"] == 0
    assert (await bob.get(f"{ACTIVITIES}/{activity_id}")).status_code == 404
    assert (await bob.get(ACTIVITIES)).json()["pagination"]["total"] == 0
    assert (await bob.get(f"{API}/batch/jobs/{job_id}")).status_code == 404
    assert (await bob.get(f"{API}/entities/player/player_001")).status_code == 404
    assert (await bob.delete(f"{API}/entities/player/player_001")).status_code == 404
    events = (await bob.post(f"{API}/batch/events", json=[deposit(1)])).json()
    assert events["data"]["errors"][0]["code"] == "ENTITY_NOT_FOUND"
    # The same natural keys are free in another tenant.
    assert (await bob.post(BATCHES, json=batch(activity(1)))).json()["inserted_count"] == 1
    assert (await bob.post(f"{API}/batch/entities", json=[player(1)])).json()["data"][
        "succeeded"
    ] == 1
    alice_player = (await alice.get(f"{API}/entities/player/player_001")).json()["data"]
    assert alice_player["version"] == 1


@pytest.mark.parametrize("settings_overrides", [{"auth": "off"}])
async def test_auth_off_acts_as_the_default_tenant(
    anonymous: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await anonymous.post(BATCHES, json=batch(activity(1)))

    assert response.status_code == 201
    assert any("LOADBAY_AUTH=off" in r.getMessage() for r in caplog.get_records("setup"))


async def test_first_start_prints_one_admin_key_and_never_again(
    make_settings, caplog: pytest.LogCaptureFixture
) -> None:
    from loadbay.app import create_app

    first, second = create_app(make_settings()), create_app(make_settings())
    async with first.router.lifespan_context(first):
        pass
    printed = [r.getMessage() for r in caplog.records if "admin API key" in r.getMessage()]
    caplog.clear()
    async with second.router.lifespan_context(second):
        pass

    assert len(printed) == 1
    secret = printed[0].rsplit(" ", 1)[-1]
    assert secret.startswith("lb_live_")
    assert not [r for r in caplog.records if "admin API key" in r.getMessage()]
    async with (
        second.router.lifespan_context(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as c,
    ):
        response = await c.put(
            f"{API}/settings",
            json={"templateId": "igaming"},
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert response.status_code == 200


async def test_processes_starting_at_once_create_one_admin_key(database_url: str) -> None:
    """Each worker bootstraps on start: concurrent bootstraps queue, and one of them creates.
    The default tenant exists already (a database whose keys were all deleted, say): its
    insert does not make them queue."""
    dbs = [Database(database_url) for _ in range(4)]
    try:
        async with dbs[0].write() as unit:
            await ensure_tenant(unit.conn, "default", "Default")
        for db in dbs:  # connected, so that the four start together
            async with db.read():
                pass
        created = await asyncio.gather(*(ApiKeys(db).bootstrap() for db in dbs))
        async with dbs[0].read() as conn:
            stored = await count_keys(conn)
    finally:
        for db in dbs:
            await db.dispose()

    assert sum(key is not None for key in created) == 1
    assert stored == 1
