"""Relay leadership: one relay leads; trying costs no connection of the pool."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.database import Database
from loadbay.storage.leadership import RelayLeadership


async def test_a_database_one_node_owns_is_always_led(database_url: str, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL is shared by the nodes: its relays take turns")
    db = Database(database_url)
    try:
        assert await RelayLeadership(db).hold()
        assert await RelayLeadership(db).hold()
        assert db.engine.pool.checkedout() == 0
    finally:
        await db.dispose()


async def test_one_relay_leads_and_a_failed_try_gives_its_connection_back(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one node: its relay always leads")
    db = Database(database_url)
    first, second, third = RelayLeadership(db), RelayLeadership(db), RelayLeadership(db)
    try:
        assert await first.hold()
        assert not await second.hold()  # the lock is taken: its connection goes back
        assert db.engine.pool.checkedout() == 1

        async def unreachable(conn: AsyncConnection, lock_id: int) -> bool:
            raise OSError("connection reset by peer")

        monkeypatch.setattr(db.kind, "try_lock_session", unreachable)
        assert not await third.hold()
        assert db.engine.pool.checkedout() == 1
        await first.release()
        assert db.engine.pool.checkedout() == 0
    finally:
        await first.release()
        await db.dispose()
