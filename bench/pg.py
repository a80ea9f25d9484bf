"""Fresh PostgreSQL databases for one run, created and dropped by the bench."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url(admin_url: str, name: str, driver: str = "postgresql") -> str:
    """The admin URL with another database name (and optionally a SQLAlchemy driver)."""
    parts = urlsplit(admin_url)
    return urlunsplit((driver, parts.netloc, f"/{name}", "", ""))


def fresh_name(purpose: str) -> str:
    return f"loadbay_bench_{purpose}_{os.getpid()}"


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create(admin_url: str, name: str) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))


def drop(admin_url: str, name: str) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def server_version(admin_url: str) -> str:
    async def query() -> str:
        conn = await asyncpg.connect(admin_url)
        try:
            return str(await conn.fetchval("SELECT version()"))
        finally:
            await conn.close()

    return asyncio.run(query())
