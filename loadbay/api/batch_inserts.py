"""The batch-insert API: `/api/v1/batch-inserts` (activities)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from loadbay.api import _batch_views as views
from loadbay.api.batch_insert_schemas import (
    BatchCreated,
    BatchDetail,
    BatchInsertRequest,
    BatchList,
    BatchValidation,
    DeleteResponse,
    RetryRequest,
    RetryResponse,
)
from loadbay.api.body import batch_items, read_json, read_model
from loadbay.api.deps import (
    ActivityBatchesDep,
    BatchTenant,
    PagingDep,
    ReadTenant,
    SettingsDep,
)
from loadbay.api.errors import error_responses
from loadbay.api.middleware import idempotent_request
from loadbay.api.openapi import json_request_body
from loadbay.api.pagination import pagination
from loadbay.api.responses import json_response
from loadbay.config import Settings
from loadbay.errors import InvalidInput
from loadbay.ingest.activities import ACTIVITIES
from loadbay.ingest.collection import ConflictMode
from loadbay.ingest.ids import number_or_not_found
from loadbay.ingest.jobs import BatchJobs
from loadbay.outcomes import JobStatus

PREFIX = "/api/v1/batch-inserts"
router = APIRouter(prefix=PREFIX, tags=["batch-inserts"])


def _batch_number(batch_id: str, batches: BatchJobs) -> int:
    return number_or_not_found(batches.ids, batch_id, "batch")


@router.post(
    "/validate",
    summary="Check a batch of activities without writing it",
    description=(
        "Each activity is validated, and the batch's own duplicates fail as they would in a "
        "write. Nothing is stored and no batch is made; conflicts with stored activities are "
        "only known when the batch is written."
    ),
    response_model=BatchValidation,
    responses=error_responses(401, 403, 429, 400, 413, 415),
    openapi_extra=json_request_body(BatchInsertRequest),
)
async def validate_batch(
    request: Request,
    tenant: BatchTenant,
    batches: ActivityBatchesDep,
    config: SettingsDep,
) -> Response:
    records = await _activities(request, config)
    failures = batches.check(tenant, ACTIVITIES, records)
    return json_response(
        {
            "record_count": len(records),
            "valid_count": len(records) - len(failures),
            "failed_count": len(failures),
            "errors": [views.record_result(r) for r in failures],
        }
    )


@router.post(
    "",
    status_code=201,
    summary="Execute a batch insert of activities",
    response_model=BatchCreated,
    responses=error_responses(401, 403, 429, 400, 413, 415, 422),
    openapi_extra=json_request_body(BatchInsertRequest),
)
async def create_batch(
    request: Request,
    tenant: BatchTenant,
    batches: ActivityBatchesDep,
    config: SettingsDep,
) -> Response:
    records = await _activities(request, config)
    job = await batches.run(tenant, ACTIVITIES, records, idempotent_request(request))
    return json_response(
        views.batch_created(job, batches.ids),
        status_code=201,
        headers={"Location": f"{PREFIX}/{batches.ids.format(job.id)}"},
    )


@router.get(
    "",
    summary="List batch insert operations, newest first",
    response_model=BatchList,
    responses=error_responses(401, 403, 429, 422),
)
async def list_batches(
    paging: PagingDep,
    tenant: ReadTenant,
    batches: ActivityBatchesDep,
    status: JobStatus | None = Query(None, description="Only batches with this status."),
) -> Response:
    found = await batches.list(tenant, status=status, page=paging.page, limit=paging.limit)
    return json_response(
        {
            "data": [views.batch_summary(job, batches.ids) for job in found.jobs],
            "pagination": pagination(paging, found.total),
        }
    )


@router.get(
    "/{batch_id}",
    summary="Get a batch insert operation with its per-record results",
    response_model=BatchDetail,
    responses=error_responses(401, 403, 429, 404),
)
async def get_batch(
    batch_id: str,
    tenant: ReadTenant,
    batches: ActivityBatchesDep,
) -> Response:
    job = await batches.get(tenant, _batch_number(batch_id, batches))
    return json_response(views.batch_detail(job, batches.ids))


@router.put(
    "/{batch_id}",
    summary="Retry failed records of a batch",
    response_model=RetryResponse,
    responses=error_responses(401, 403, 429, 400, 404, 413, 415, 422),
    openapi_extra=json_request_body(RetryRequest),
)
async def retry_batch(
    batch_id: str,
    request: Request,
    tenant: BatchTenant,
    batches: ActivityBatchesDep,
    config: SettingsDep,
) -> Response:
    number = _batch_number(batch_id, batches)
    retry = await read_model(request, RetryRequest, config.max_body_bytes)
    mode = ConflictMode.UPDATE if retry.ignore_constraints else ACTIVITIES.on_conflict
    report = await batches.retry(tenant, ACTIVITIES, number, retry.retry_indices, mode=mode)
    return json_response(views.retried(report.job, batches.ids, report.results))


@router.delete(
    "/{batch_id}",
    summary="Delete a batch insert record (the inserted activities stay)",
    response_model=DeleteResponse,
    responses=error_responses(401, 403, 429, 404),
)
async def delete_batch(
    batch_id: str,
    tenant: BatchTenant,
    batches: ActivityBatchesDep,
) -> Response:
    await batches.delete(tenant, _batch_number(batch_id, batches))
    return json_response({"message": f"Batch insert record {batch_id} deleted successfully"})


async def _activities(request: Request, config: Settings) -> list[Any]:
    """The batch's `activities`, or a precise 400."""
    body = await read_json(request, config.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidInput(
            'request body must be a JSON object: {"activities": [...]}', code="invalid_body"
        )
    unknown = sorted(set(body) - {"activities"})
    if unknown:
        raise InvalidInput(f"unknown properties in request body: {unknown}", code="invalid_body")
    if "activities" not in body:
        raise InvalidInput('request body needs an "activities" array', code="invalid_body")
    return batch_items(
        request, body["activities"], what="activities", max_items=config.batch_max_records
    )
