"""Relay leadership: one relay publishes at a time, so a key's events keep their order."""

from __future__ import annotations

import contextlib

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.database import Database

# Any constant works; it only has to be the same on every node.
_RELAY_LOCK_ID = 0x10ADE7


class RelayLeadership:
    """A lock held by a session of its own (PostgreSQL's advisory lock: storage.kinds).

    The lock goes with the connection: a relay that dies, or loses its database, frees it for
    another node's relay. A database one node owns (SQLite) has no other relay to lock out.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None

    async def hold(self) -> bool:
        """True while this relay leads; tries to become leader when it does not."""
        kind = self._db.kind
        if not kind.shared_by_nodes:
            return True
        try:
            if self._conn is not None:
                await self._conn.execute(text("SELECT 1"))
                return True
            conn = await self._db.engine.connect()
            leads = False
            try:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                leads = await kind.try_lock_session(conn, _RELAY_LOCK_ID)
            finally:
                # Not leading, or failed on the way: the connection goes back to the pool.
                if not leads:
                    with contextlib.suppress(DBAPIError, SQLAlchemyError, OSError):
                        await conn.close()
            if leads:
                self._conn = conn
                return True
        except (DBAPIError, SQLAlchemyError, OSError):
            await self.release()
        return False

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(DBAPIError, SQLAlchemyError, OSError):
                await conn.close()
