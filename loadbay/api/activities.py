"""Reading stored activities: `/api/v1/activities`."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from loadbay.api.deps import ActivityRecordsDep, PagingDep, ReadTenant
from loadbay.api.errors import error_responses
from loadbay.api.pagination import Pagination, pagination
from loadbay.api.responses import json_response, timestamp
from loadbay.ingest.activities import ACTIVITIES, Activity

router = APIRouter(prefix="/api/v1/activities", tags=["activities"])


class ActivityOut(BaseModel):
    id: str
    coordinator_id: str
    mentor_id: str
    activity_type: str
    activity_date: date
    duration_minutes: int
    version: int
    created_at: str
    updated_at: str


class ActivityList(BaseModel):
    data: list[ActivityOut]
    pagination: Pagination


def _activity(activity: Activity) -> dict[str, Any]:
    return {
        "id": ACTIVITIES.ids.format(activity.id),
        "coordinator_id": activity.coordinator_id,
        "mentor_id": activity.mentor_id,
        "activity_type": activity.activity_type,
        "activity_date": activity.activity_date.isoformat(),
        "duration_minutes": activity.duration_minutes,
        "version": activity.version,
        "created_at": timestamp(activity.created_at),
        "updated_at": timestamp(activity.updated_at),
    }


@router.get(
    "",
    summary="List stored activities in id order",
    response_model=ActivityList,
    responses=error_responses(401, 403, 429, 422),
)
async def list_activities(
    paging: PagingDep,
    tenant: ReadTenant,
    records: ActivityRecordsDep,
    mentor_id: str | None = Query(None, max_length=255),
    coordinator_id: str | None = Query(None, max_length=255),
    activity_type: str | None = Query(None, max_length=255),
    activity_date: date | None = Query(None),
) -> Response:
    filters = {
        name: value
        for name, value in {
            "mentor_id": mentor_id,
            "coordinator_id": coordinator_id,
            "activity_type": activity_type,
            "activity_date": activity_date,
        }.items()
        if value is not None
    }
    found = await records.list(tenant, filters=filters, offset=paging.offset, limit=paging.limit)
    return json_response(
        {
            "data": [_activity(activity) for activity in found.records],
            "pagination": pagination(paging, found.total),
        }
    )


@router.get(
    "/{activity_id}",
    summary="Get one stored activity",
    response_model=ActivityOut,
    responses=error_responses(401, 403, 429, 404),
)
async def get_activity(
    activity_id: str,
    tenant: ReadTenant,
    records: ActivityRecordsDep,
) -> Response:
    return json_response(_activity(await records.get(tenant, activity_id)))
