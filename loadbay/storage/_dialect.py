"""Dialect-specific Core constructs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert_insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that offers `.on_conflict_do_nothing()` / `.on_conflict_do_update()`."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
