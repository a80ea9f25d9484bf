"""Request-scoped dependencies: settings, services and the acting tenant, each with the
`Annotated` alias that route signatures use (`tenant: ReadTenant`, `service: OperatorDataDep`).

Each provider is `async def`, though it awaits nothing: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from loadbay.api.auth import tenant_for
from loadbay.api.pagination import PageRequest, page_request
from loadbay.auth.keys import Scope
from loadbay.config import Settings
from loadbay.domain_events.broker_probe import BrokerProbe
from loadbay.domain_events.feed import EventFeed
from loadbay.files.jobs import FileJobs
from loadbay.files.store import FileStore
from loadbay.ingest.instance_reads import InstanceReads
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


async def event_feed(request: Request) -> EventFeed:
    return request.app.state.event_feed  # type: ignore[no-any-return]


async def file_store(request: Request) -> FileStore:
    return request.app.state.files  # type: ignore[no-any-return]


async def file_jobs(request: Request) -> FileJobs:
    return request.app.state.file_jobs  # type: ignore[no-any-return]


async def instance_reads(request: Request) -> InstanceReads:
    return request.app.state.instance_reads  # type: ignore[no-any-return]


# The acting tenant: an authenticated caller holding the scope, within its rate limit.
ReadTenant = Annotated[str, Depends(tenant_for(Scope.READ))]
BatchTenant = Annotated[str, Depends(tenant_for(Scope.INGEST_BATCH))]
FilesTenant = Annotated[str, Depends(tenant_for(Scope.INGEST_FILES))]
AdminTenant = Annotated[str, Depends(tenant_for(Scope.ADMIN))]

SettingsDep = Annotated[Settings, Depends(settings)]
DatabaseDep = Annotated[Database, Depends(database)]
BrokerProbeDep = Annotated[BrokerProbe | None, Depends(broker_probe)]
ActivityBatchesDep = Annotated[BatchJobs, Depends(activity_batches)]
ActivityRecordsDep = Annotated[Records, Depends(activity_records)]
OperatorDataDep = Annotated[OperatorData, Depends(operator_data)]
EventFeedDep = Annotated[EventFeed, Depends(event_feed)]
FileStoreDep = Annotated[FileStore, Depends(file_store)]
FileJobsDep = Annotated[FileJobs, Depends(file_jobs)]
InstanceReadsDep = Annotated[InstanceReads, Depends(instance_reads)]
PagingDep = Annotated[PageRequest, Depends(page_request)]
