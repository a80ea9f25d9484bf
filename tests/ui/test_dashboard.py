"""The /ui dashboard over HTTP: log in with a key (cookie only), jobs of every kind, a job's
failures and error files, the chart, the keys — each tenant its own."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loadbay.auth.keys import parse_scopes
from tests.api.instances.helpers import bulk, instance, upload
from tests.conftest import ClientFactory
from tests.factories import BATCHES, activity, batch


async def browser(
    started: FastAPI, tenant: str = "default", scopes: Any = None
) -> httpx.AsyncClient:
    """A cookie-keeping client logged in to the dashboard with a new key of `tenant`."""
    key = await started.state.api_keys.create(tenant, parse_scopes(scopes or ("read",)))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=started), base_url="http://ui.test"
    )
    response = await client.post("/ui/login", data={"key": key.secret})
    assert response.status_code == 303, response.text
    return client


async def test_pages_send_a_stranger_to_the_login(started: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=started), base_url="http://ui.test"
    ) as stranger:
        for path in ("/ui", "/ui/jobs/batch-001", "/ui/files/a.ndjson_errors"):
            response = await stranger.get(path)
            assert (response.status_code, response.headers["location"]) == (303, "/ui/login")
        login = await stranger.get("/ui/login")

    assert login.status_code == 200
    assert 'type="password" name="key"' in login.text


async def test_logging_in_keeps_the_key_in_a_strict_http_only_cookie(started: FastAPI) -> None:
    key = await started.state.api_keys.create("default", parse_scopes(("read",)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=started), base_url="http://ui.test"
    ) as client:
        refused = await client.post("/ui/login", data={"key": "lb_live_nonsense"})
        response = await client.post("/ui/login", data={"key": key.secret})
        page = await client.get("/ui")
        logout = await client.post("/ui/logout")
        after = await client.get("/ui")

    assert refused.status_code == 401
    assert "unknown, revoked, expired" in refused.text
    assert response.status_code == 303
    assert response.headers["location"] == "/ui"  # never the key in a URL
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"loadbay_key={key.secret};")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/ui"):
        assert attribute in cookie
    assert page.status_code == 200
    assert key.secret not in page.text
    assert logout.status_code == 303
    assert after.headers["location"] == "/ui/login"


async def test_jobs_of_every_kind_newest_first_with_filters(
    started: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.post(BATCHES, json=batch(activity(1), activity(2, duration_minutes=0)))
    await upload(client, "a.ndjson", instance(1), b"oops")
    await bulk(client, "a.ndjson")
    ui = await browser(started)

    page = (await ui.get("/ui")).text
    files_only = (await ui.get("/ui", params={"kind": "instances_bulk"})).text
    failed_only = (await ui.get("/ui", params={"status": "failed"})).text
    await ui.aclose()

    assert page.index('data-job="job_') < page.index('data-job="batch-001"')  # newest first
    assert "batch inserts" in page
    assert "instance files" in page
    assert 'data-job="batch-001"' not in files_only
    assert 'data-job="job_' in files_only
    assert "data-job" not in failed_only
    assert '<rect x="' in page  # today's bars in the chart
    assert "<title>" in page.split('<svg id="chart"')[1]


async def test_a_jobs_page_shows_its_failures_and_error_files(
    started: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.post(BATCHES, json=batch(activity(1), activity(2, duration_minutes=0)))
    await upload(client, "a.ndjson", instance(1), b"oops")
    accepted = await client.post(
        "/instance-storage/instances/bulk",
        json={"recordsFileName": "a.ndjson"},
        headers={"Prefer": "respond-async"},
    )
    file_job = accepted.json()["id"]
    for _ in range(100):
        if (await client.get(f"/jobs/{file_job}")).json()["status"] != "processing":
            break
        await asyncio.sleep(0.05)
    ui = await browser(started)

    batch_page = (await ui.get("/ui/jobs/batch-001")).text
    file_page = (await ui.get(f"/ui/jobs/{file_job}")).text
    errors = await ui.get("/ui/files/a.ndjson_errors")
    await ui.aclose()

    assert "validation_error" in batch_page
    assert "duration_minutes" in batch_page
    assert 'href="/ui/files/a.ndjson_errors"' in file_page
    assert errors.status_code == 200
    assert errors.text.startswith("2, INVALID_JSON")


async def test_a_tenant_sees_only_its_own_jobs_and_keys(
    started: FastAPI, make_client: ClientFactory
) -> None:
    mine = await make_client(tenant="mine")
    await mine.post(BATCHES, json=batch(activity(1)))
    other = await browser(started, tenant="other")
    own = await browser(started, tenant="mine")

    others_page = (await other.get("/ui")).text
    peek = await other.get("/ui/jobs/batch-001")
    own_page = (await own.get("/ui")).text
    await other.aclose()
    await own.aclose()

    assert "data-job" not in others_page
    assert peek.status_code == 404
    assert 'data-job="batch-001"' in own_page
    mine_keys = await started.state.api_keys.list("mine")
    assert all(k.prefix in own_page for k in mine_keys)
    assert not any(k.prefix in others_page for k in mine_keys)


@pytest.mark.parametrize("scopes", [("ingest:batch",)])
async def test_a_key_that_may_not_read_cannot_log_in(started: FastAPI, scopes: Any) -> None:
    writer = await started.state.api_keys.create("default", parse_scopes(scopes))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=started), base_url="http://ui.test"
    ) as client:
        response = await client.post("/ui/login", data={"key": writer.secret})

    assert response.status_code == 401
