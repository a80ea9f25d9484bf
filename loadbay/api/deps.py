"""Request-scoped dependencies: settings, services and the acting tenant.

Each is `async def`, though it awaits nothing: FastAPI runs a plain `def` dependency in its
thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from fastapi import Request

from loadbay.config import Settings
from loadbay.events.broker_probe import BrokerProbe
from loadbay.ingest.jobs import BatchJobs
from loadbay.ingest.operator_service import OperatorData
from loadbay.ingest.records import Records
from loadbay.storage.database import Database


async def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def broker_probe(request: Request) -> BrokerProbe | None:
    """The configured event broker's probe; None when events go to no broker."""
    return request.app.state.broker_probe  # type: ignore[no-any-return]


async def activity_batches(request: Request) -> BatchJobs:
    return request.app.state.activity_batches  # type: ignore[no-any-return]


async def activity_records(request: Request) -> Records:
    return request.app.state.activity_records  # type: ignore[no-any-return]


async def operator_data(request: Request) -> OperatorData:
    return request.app.state.operator_data  # type: ignore[no-any-return]
