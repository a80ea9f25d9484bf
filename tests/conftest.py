"""Fixtures: every API test runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loadbay.app import create_app
from loadbay.auth.keys import parse_scopes
from loadbay.auth.tenants import DEFAULT_TENANT_ID
from loadbay.config import Settings
from tests.databases import (
    POSTGRES_REQUIRED,
    POSTGRES_URL,
    PostgresTestDatabase,
    make_sqlite_template,
    postgres_reachable,
    run_isolated,
    sqlite_copy,
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresTestDatabase]:
    if not run_isolated(postgres_reachable()):
        message = f"PostgreSQL not reachable at {POSTGRES_URL}: PostgreSQL suite skipped"
        if POSTGRES_REQUIRED:
            pytest.fail(message.replace("skipped", "required (LOADBAY_REQUIRE_POSTGRES=1)"))
        pytest.skip(message)
    database = PostgresTestDatabase()
    database.create()
    yield database
    database.drop()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> str:
    if request.param == "sqlite":
        return sqlite_copy(sqlite_template, tmp_path)
    postgres: PostgresTestDatabase = request.getfixturevalue("postgres_database")
    await postgres.empty()
    return postgres.url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or parametrize) to change settings."""
    return {}


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(database_url=database_url, data_dir=tmp_path, **overrides)

    return make


@pytest.fixture
def app(make_settings: Callable[..., Settings], settings_overrides: dict[str, Any]) -> FastAPI:
    return create_app(make_settings(**settings_overrides))


@pytest.fixture
async def started(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_client(started: FastAPI) -> AsyncIterator[ClientFactory]:
    """Clients of the running app, each with a new API key for `tenant` and `scopes`."""
    clients: list[httpx.AsyncClient] = []

    async def make(
        tenant: str = DEFAULT_TENANT_ID, scopes: tuple[str, ...] = ("admin",), **key: Any
    ) -> httpx.AsyncClient:
        headers = {}
        if scopes:
            new = await started.state.api_keys.create(tenant, parse_scopes(scopes), **key)
            headers["Authorization"] = f"Bearer {new.secret}"
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=started),
            base_url="http://loadbay.test",
            headers=headers,
        )
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
async def client(make_client: ClientFactory) -> httpx.AsyncClient:
    """An admin of the default tenant."""
    return await make_client()


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgresql") else "sqlite"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # obstore's tokio worker threads can race Py_Finalize and abort the process (SIGABRT)
    # after every test has passed; the run is over here, so leave without finalizing.
    if _EXIT_STATUS in config.stash:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT_STATUS])


_EXIT_STATUS = pytest.StashKey[int]()
