"""Test databases: a migrated SQLite template copied per test; a PostgreSQL database per run."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import make_url

from loadbay.storage import migrate
from loadbay.storage.database import Database
from loadbay.storage.tables import metadata

POSTGRES_URL = os.environ.get(
    "LOADBAY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
POSTGRES_REQUIRED = os.environ.get("LOADBAY_REQUIRE_POSTGRES") == "1"
T = TypeVar("T")


def run_isolated(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a loop of its own, whether or not a loop is running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def postgres_reachable() -> bool:
    try:
        conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


def make_sqlite_template(directory: Path) -> Path:
    template = directory / "template.db"
    run_isolated(_migrate(f"sqlite+aiosqlite:///{template}"))
    return template


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / "loadbay.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


class PostgresTestDatabase:
    """A database of this test run's own, beside the configured one; emptied per test."""

    def __init__(self) -> None:
        self.name = f"loadbay_test_{os.getpid()}"
        self.url = make_url(POSTGRES_URL).set(database=self.name).render_as_string(False)

    def create(self) -> None:
        run_isolated(self._admin(f'DROP DATABASE IF EXISTS "{self.name}"'))
        run_isolated(self._admin(f'CREATE DATABASE "{self.name}"'))
        run_isolated(_migrate(self.url))

    def drop(self) -> None:
        run_isolated(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def empty(self) -> None:
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
