"""Request-scoped dependencies: settings, services and the acting tenant, each as the
`Annotated` alias that route signatures use (`tenant: ReadTenant`, `service: OperatorDataDep`).

Each provider is `async def`, though it awaits nothing: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from loadbay.api.auth import tenant_for
from loadbay.api.pagination import PageRequest, page_request
from loadbay.auth.keys import Scope
from loadbay.config import Settings
from loadbay.domain_events.broker_probe import BrokerProbe
from loadbay.domain_events.feed import EventFeed
from loadbay.files.jobs import FileJobs
from loadbay.files.store import FileStore
from loadbay.ingest.activities import Activity
from loadbay.ingest.instance_reads import InstanceReads
from loadbay.ingest.jobs import BatchJobs
from loadbay.ingest.operator_service import OperatorData
from loadbay.ingest.records import Records
from loadbay.storage.database import Database
from loadbay.ui.views import Dashboard


def _from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A provider of what the app's start-up put on its state under `name` (loadbay.app)."""

    async def provider(request: Request) -> Any:
        return getattr(request.app.state, name)

    provider.__name__ = name
    return provider


# The acting tenant: an authenticated caller holding the scope, within its rate limit.
ReadTenant = Annotated[str, Depends(tenant_for(Scope.READ))]
BatchTenant = Annotated[str, Depends(tenant_for(Scope.INGEST_BATCH))]
FilesTenant = Annotated[str, Depends(tenant_for(Scope.INGEST_FILES))]
AdminTenant = Annotated[str, Depends(tenant_for(Scope.ADMIN))]

SettingsDep = Annotated[Settings, Depends(_from_state("settings"))]
DatabaseDep = Annotated[Database, Depends(_from_state("db"))]
BrokerProbeDep = Annotated[BrokerProbe | None, Depends(_from_state("broker_probe"))]
ActivityBatchesDep = Annotated[BatchJobs, Depends(_from_state("activity_batches"))]
ActivityRecordsDep = Annotated[Records[Activity], Depends(_from_state("activity_records"))]
OperatorDataDep = Annotated[OperatorData, Depends(_from_state("operator_data"))]
EventFeedDep = Annotated[EventFeed, Depends(_from_state("event_feed"))]
FileStoreDep = Annotated[FileStore, Depends(_from_state("files"))]
FileJobsDep = Annotated[FileJobs, Depends(_from_state("file_jobs"))]
InstanceReadsDep = Annotated[InstanceReads, Depends(_from_state("instance_reads"))]
DashboardDep = Annotated[Dashboard, Depends(_from_state("dashboard"))]
PagingDep = Annotated[PageRequest, Depends(page_request)]
