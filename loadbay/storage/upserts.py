"""INSERTs that offer ON CONFLICT, in the dialect of the connection (Core constructs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert_insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that offers `.on_conflict_do_nothing()` / `.on_conflict_do_update()`."""
    return dialect_upsert_insert(conn.dialect.name, table)


def dialect_upsert_insert(dialect: str, table: Table) -> Any:
    """`upsert_insert` for a dialect named, to build a statement once per dialect."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
