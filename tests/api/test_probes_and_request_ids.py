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
from tests.domain_events.broker_readers import READERS, broker_url, unique_names


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


async def ready(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/readyz")


@pytest.mark.parametrize("broker", ["nats", "redis", "amqp"])
async def test_a_node_running_the_relay_is_ready_when_its_broker_is(
    broker: str, make_settings: Callable[..., Settings]
) -> None:
    url, reader = broker_url(broker), READERS[broker][1]
    names = unique_names()
    async with reader(url, names):
        answer = await ready(make_settings(events_url=url, **names))

    assert answer.status_code == 200
    assert answer.json()["broker"] == broker


@pytest.mark.parametrize(
    ("broker", "closed"),
    [
        ("nats", "nats://loadbay:s3cr%40t@127.0.0.1:1"),
        ("redis", "redis://:s3cr%40t@127.0.0.1:1"),
        ("amqp", "amqp://guest:s3cr%40t@127.0.0.1:1/"),
    ],
)
async def test_a_node_whose_broker_is_unreachable_is_not_ready_unless_told(
    broker: str, closed: str, make_settings: Callable[..., Settings]
) -> None:
    down = await ready(make_settings(events_url=closed))
    tolerant = await ready(make_settings(events_url=closed, ready_needs_broker=False))
    not_relaying = await ready(make_settings(events_url=closed, relay_in_server=False))

    assert down.status_code == 503
    assert down.json()["error"]["code"] == "broker_unavailable"
    assert down.json()["error"]["message"].startswith(f"{broker} broker unreachable")
    assert "s3cr" not in down.text
    assert (tolerant.status_code, not_relaying.status_code) == (200, 200)
    assert "broker" not in tolerant.json()


async def test_without_a_broker_readiness_names_none(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz")

    assert answer.status_code == 200
    assert "broker" not in answer.json()


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


async def test_the_access_line_tells_the_caller_and_cannot_be_forged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="loadbay.access"):
        await client.get("/api/v1/batch-inserts")
        await client.get("/x%0aINFO:%20forged")
    listed, forged = [r for r in caplog.records if r.name == "loadbay.access"]

    assert listed.getMessage().startswith("GET /api/v1/batch-inserts 200 ")
    assert listed.fields["tenant"] == "default"  # type: ignore[attr-defined]
    assert listed.fields["key_prefix"].startswith("lb_live_")  # type: ignore[attr-defined]
    assert "records" not in listed.fields  # type: ignore[attr-defined]
    assert "\n" not in forged.getMessage()
    assert forged.getMessage().startswith("GET /x%0AINFO%3A%20forged 404 ")
