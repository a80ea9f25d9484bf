"""The event feed (`/events`) and operational metrics (`/metrics`)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import BaseModel

from loadbay.api.auth import bearer_secret
from loadbay.api.deps import EventFeedDep, FileJobsDep, ReadTenant, SettingsDep
from loadbay.api.errors import error_responses
from loadbay.api.responses import json_response
from loadbay.errors import Unauthorized
from loadbay.metrics import render as render_metrics
from loadbay.outcomes import JobStatus

router = APIRouter(tags=["events"])


class DomainEvent(BaseModel):
    eventId: str
    eventTs: int
    type: str
    tenant: str
    collection: str
    key: str
    jobId: str | None
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None


class EventFeedPage(BaseModel):
    data: list[DomainEvent]
    cursor: str | None


@router.get(
    "/events",
    summary="The tenant's domain events, oldest first, from a cursor",
    response_model=EventFeedPage,
    responses=error_responses(401, 403, 422, 429),
)
async def list_events(
    tenant: ReadTenant,
    feed: EventFeedDep,
    collection: str | None = Query(
        None, max_length=64, description="activities, entities, events, states"
    ),
    after: str | None = Query(None, description="The `cursor` of the previous page."),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    page = await feed.page(tenant, collection=collection, after=after, limit=limit)
    return json_response({"data": page.events, "cursor": page.cursor})


def _check_scraper(request: Request, token: str) -> None:
    sent = bearer_secret(request) or ""
    # As bytes (compare_digest refuses non-ASCII str); headers arrive decoded as latin-1.
    if not hmac.compare_digest(sent.encode("latin-1"), token.encode()):
        raise Unauthorized(
            "/metrics needs Authorization: Bearer <LOADBAY_METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


JOB_STATUSES = [status.value for status in JobStatus]


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses=error_responses(401),
)
async def metrics(
    request: Request,
    feed: EventFeedDep,
    jobs: FileJobsDep,
    config: SettingsDep,
) -> Response:
    """Requests, records, the relay and the outbox, in Prometheus' text format.

    Under several workers, the counters of all of them; the outbox gauges are read from the
    database on each scrape. With LOADBAY_METRICS_TOKEN set, only for `Bearer <token>`.
    """
    if config.metrics_token is not None:
        _check_scraper(request, config.metrics_token)
    lag = await feed.lag()
    gauges = [
        "# HELP loadbay_outbox_pending_events Domain events not yet published to the broker.",
        "# TYPE loadbay_outbox_pending_events gauge",
        f"loadbay_outbox_pending_events {lag.pending}",
        "# HELP loadbay_outbox_oldest_pending_seconds Age of the oldest unpublished event.",
        "# TYPE loadbay_outbox_oldest_pending_seconds gauge",
        f"loadbay_outbox_oldest_pending_seconds {lag.oldest_age_seconds:.3f}",
        "# HELP loadbay_file_jobs File jobs by status (processing: the queue's depth).",
        "# TYPE loadbay_file_jobs gauge",
    ]
    counts = await jobs.counts()
    gauges += [f'loadbay_file_jobs{{status="{s}"}} {counts.get(s, 0)}' for s in JOB_STATUSES]
    return Response(render_metrics(gauges), media_type=CONTENT_TYPE_PLAIN_0_0_4)
