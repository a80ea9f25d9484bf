"""What the event tests share: an app's authenticated client, its feed, its relay's progress."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI


async def feed(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """The events of `GET /events`, up to 1,000, with `params` added to the query."""
    response = await client.get("/events", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    return events


async def client_for(app: FastAPI) -> httpx.AsyncClient:
    """A client of `app` with a new admin key of the default tenant."""
    key = await app.state.api_keys.create("default", frozenset({"admin"}))  # type: ignore[arg-type]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"Authorization": f"Bearer {key.secret}"},
    )


async def wait_until_published(app: FastAPI, seconds: float = 20) -> None:
    """Until the app's relay has published every event; the test fails after `seconds`."""
    for _ in range(int(seconds * 10)):
        if (await app.state.event_feed.lag()).pending == 0:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"events still unpublished after {seconds} s")
