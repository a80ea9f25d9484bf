"""The database going away mid-life: a clear, retryable 503, then recovery without a restart."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from loadbay.api.errors import is_database_outage
from loadbay.storage.database import Database
from tests.factories import BATCHES, activity, batch


async def _drop_every_connection(database_url: str) -> int:
    """What a PostgreSQL restart or failover does to the server's pooled connections."""
    url = make_url(database_url).set(drivername="postgresql")
    admin = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        dropped = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    return len(dropped)


@pytest.mark.parametrize(
    "headers", [{}, {"Idempotency-Key": "k-1"}], ids=["plain", "idempotency key"]
)
async def test_lost_connections_answer_503_then_the_server_recovers(
    client: httpx.AsyncClient, backend: str, database_url: str, headers: dict[str, str]
) -> None:
    if backend == "sqlite":
        pytest.skip("an embedded SQLite file has no connection to lose")
    assert (await client.post(BATCHES, json=batch(activity(1)))).status_code == 201
    assert await _drop_every_connection(database_url) >= 1

    # With a key, the middleware meets the outage first (claiming the key), before any route.
    outage = await client.post(BATCHES, json=batch(activity(2)), headers=headers)

    assert outage.status_code == 503, outage.text
    assert outage.headers["Retry-After"] == "1"
    assert outage.json()["error"]["code"] == "database_unavailable"
    retried = await client.post(BATCHES, json=batch(activity(2)), headers=headers)
    assert retried.status_code == 201, retried.text
    listed = (await client.get(BATCHES)).json()
    assert listed["pagination"]["total"] == 2


async def test_a_wrong_statement_is_not_taken_for_an_outage(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            with pytest.raises(DBAPIError) as wrong:
                await conn.exec_driver_sql("SELEC 1")
    finally:
        await db.dispose()

    assert not is_database_outage(wrong.value)
