"""Request-scoped dependencies: settings, services and the acting tenant."""

from __future__ import annotations

from fastapi import Request

from loadbay.config import Settings
from loadbay.events.broker_probe import BrokerProbe
from loadbay.ingest.jobs import BatchJobs
from loadbay.ingest.operator_service import OperatorData
from loadbay.ingest.records import Records
from loadbay.storage.database import Database


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def broker_probe(request: Request) -> BrokerProbe | None:
    """The configured event broker's probe; None when events go to no broker."""
    return request.app.state.broker_probe  # type: ignore[no-any-return]


def activity_batches(request: Request) -> BatchJobs:
    return request.app.state.activity_batches  # type: ignore[no-any-return]


def activity_records(request: Request) -> Records:
    return request.app.state.activity_records  # type: ignore[no-any-return]


def operator_data(request: Request) -> OperatorData:
    return request.app.state.operator_data  # type: ignore[no-any-return]
