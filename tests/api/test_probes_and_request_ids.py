"""Probes for orchestrators (/livez, /readyz) and the request id on every answer."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from loadbay.api.request_ids import RequestIdFilter, RequestIds
from loadbay.app import create_app
from loadbay.config import Settings
from loadbay.storage import migrate
from tests.events.brokers import AMQP_URL, NATS_URL, REDIS_URL, reachable, unique_names


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    live = await client.get("/livez")
    ready = await client.get("/readyz")

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["schema"] == migrate.head_revision()


async def test_a_database_behind_the_code_is_not_ready(
    started: FastAPI, client: httpx.AsyncClient
) -> None:
    await migrate.downgrade(started.state.db, "0007")
    try:
        response = await client.get("/readyz")
    finally:
        await migrate.upgrade(started.state.db)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "schema_outdated"
    assert "needs" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("broker", "url", "closed"),
    [
        ("nats", NATS_URL, "nats://127.0.0.1:1"),
        ("redis", REDIS_URL, "redis://127.0.0.1:1"),
        ("amqp", AMQP_URL, "amqp://guest:guest@127.0.0.1:1/"),
    ],
)
async def test_readiness_needs_the_configured_broker(
    broker: str, url: str, closed: str, make_settings: Callable[..., Settings]
) -> None:
    if not reachable(url):
        pytest.skip(f"{broker} not reachable at {url}")
    answers = []
    for events_url in (url, closed):
        app = create_app(
            make_settings(events_url=events_url, relay_in_server=False, **unique_names())
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                answers.append(await client.get("/readyz"))
    reachable_broker, closed_broker = answers

    assert reachable_broker.status_code == 200
    assert reachable_broker.json()["broker"] == broker
    assert closed_broker.status_code == 503
    assert closed_broker.json()["error"]["code"] == "broker_unavailable"
    assert f"{broker} broker unreachable" in closed_broker.json()["error"]["message"]


async def test_without_a_broker_readiness_names_none(client: httpx.AsyncClient) -> None:
    assert "broker" not in (await client.get("/readyz")).json()


async def test_every_answer_carries_a_request_id_a_client_may_choose(
    client: httpx.AsyncClient,
) -> None:
    made = await client.get("/livez")
    again = await client.get("/livez")
    chosen = await client.get("/no/such/path", headers={"X-Request-Id": "trace-42"})
    refused = await client.get("/livez", headers={"X-Request-Id": "bad id with spaces"})

    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-request-id"] != again.headers["x-request-id"]
    assert chosen.status_code == 404
    assert chosen.headers["x-request-id"] == "trace-42"
    assert refused.headers["x-request-id"] != "bad id with spaces"


async def test_log_lines_written_during_a_request_carry_its_id() -> None:
    logger = logging.getLogger("loadbay.test_request_ids")
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.request_id)  # type: ignore[attr-defined]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        logger.warning("inside")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    capture = Capture()
    capture.addFilter(RequestIdFilter())
    logger.addHandler(capture)
    try:
        transport = httpx.ASGITransport(app=RequestIds(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/", headers={"X-Request-Id": "req-7"})
        logger.warning("outside any request")
    finally:
        logger.removeHandler(capture)

    assert answer.headers["x-request-id"] == "req-7"
    assert seen == ["req-7", "-"]
