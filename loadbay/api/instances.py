"""The instance bulk API (`/instance-storage/instances`) and file-job status (`/jobs`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from loadbay.api.body import read_model
from loadbay.api.deps import FileJobsDep, FilesTenant, InstanceReadsDep, ReadTenant, SettingsDep
from loadbay.api.errors import error_responses
from loadbay.api.instance_envelope import InstanceErrors
from loadbay.api.openapi import json_request_body
from loadbay.api.responses import json_response
from loadbay.errors import NotFound, UnprocessableInput
from loadbay.files.jobs import FileJob, FileJobs
from loadbay.files.store import check_name
from loadbay.ingest.ids import number_or_not_found

PREFIX = "/instance-storage"
router = APIRouter(tags=["instances"])


class BulkRequest(BaseModel):
    """Bulk entities upsert request."""

    model_config = ConfigDict(extra="forbid", strict=True)

    recordsFileName: str = Field(description="A file in the tenant's space (see /files).")
    publishEvents: bool = Field(True, description="Whether domain events are published.")


class BulkResponse(BaseModel):
    errorRecordsFileName: str
    errorsFileName: str
    errorsNumber: int


class JobView(BaseModel):
    id: str
    status: str
    recordsFileName: str
    publishEvents: bool
    linesRead: int
    linesTotal: int | None
    progress: int
    succeeded: int
    failed: int
    errorsNumber: int
    errorRecordsFileName: str
    errorsFileName: str
    error: str | None
    createdAt: str
    completedAt: str | None


def _errors(*statuses: int) -> dict[int | str, Any]:
    return error_responses(401, 403, 429, *statuses, model=InstanceErrors)


def _job_view(jobs: FileJobs, job: FileJob) -> dict[str, Any]:
    return {
        "id": jobs.ids.format(job.id),
        "status": job.status.value,
        "recordsFileName": job.records_file,
        "publishEvents": job.publish_events,
        "linesRead": job.lines_done,
        "linesTotal": job.lines_total,
        "progress": job.progress,
        "succeeded": job.succeeded_count,
        "failed": job.failed_count,
        "errorsNumber": job.errors_count,
        "errorRecordsFileName": job.error_files.records,
        "errorsFileName": job.error_files.errors,
        "error": job.error,
        "createdAt": job.created_at.isoformat(),
        "completedAt": job.completed_at.isoformat() if job.completed_at else None,
    }


@router.post(
    f"{PREFIX}/instances/bulk",
    status_code=201,
    summary="Update or create the instances of a records file (NDJSON, optionally .gz)",
    response_model=BulkResponse,
    responses={
        202: {"model": JobView, "description": "Accepted (with `Prefer: respond-async`)"},
        **_errors(422),
        500: {"description": "Internal server error", "content": {"text/plain": {}}},
    },
    openapi_extra=json_request_body(BulkRequest),
)
async def bulk_upsert(
    request: Request,
    tenant: FilesTenant,
    jobs: FileJobsDep,
    config: SettingsDep,
    prefer: str | None = Header(None, description="`respond-async` for a 202 and a job"),
) -> Response:
    body = await read_model(request, BulkRequest, config.max_body_bytes)
    # As FOLIO: `/folder/file` names the file `folder/file`, and so do its error files.
    name = body.recordsFileName.removeprefix("/")
    respond_async = "respond-async" in (prefer or "").lower()
    try:
        check_name(name)
        job_id = await jobs.create(tenant, name, body.publishEvents, run_here=not respond_async)
    except NotFound:
        raise UnprocessableInput(
            f"records file {name!r} does not exist",
            code="file_not_found",
            details=[{"key": "recordsFileName", "value": name}],
        ) from None
    if respond_async:
        view = _job_view(jobs, await jobs.view(job_id))
        return json_response(view, status_code=202, headers={"Location": f"/jobs/{view['id']}"})
    await jobs.run(job_id)
    job = await jobs.view(job_id)
    return json_response(
        {
            "errorRecordsFileName": job.error_files.records,
            "errorsFileName": job.error_files.errors,
            "errorsNumber": job.errors_count,
        },
        status_code=201,
    )


@router.get(
    f"{PREFIX}/instances/{{instance_id}}",
    summary="One instance",
    responses=_errors(404),
)
async def get_instance(
    instance_id: str,
    tenant: ReadTenant,
    reads: InstanceReadsDep,
) -> Response:
    return json_response(await reads.get(tenant, instance_id))


@router.get(
    f"{PREFIX}/instances",
    summary="Instances in storage order, a page at a time",
    responses=_errors(422),
)
async def list_instances(
    tenant: ReadTenant,
    reads: InstanceReadsDep,
    offset: int = Query(0, ge=0, le=2**31 - 1),
    limit: int = Query(10, ge=0, le=1000),
) -> Response:
    found, total = await reads.page(tenant, offset=offset, limit=limit)
    return json_response({"instances": found, "totalRecords": total})


@router.get(
    "/jobs/{job_id}",
    summary="A file job: status, progress, counts, error files",
    response_model=JobView,
    responses=error_responses(401, 403, 404, 429),
)
async def get_job(
    job_id: str,
    tenant: ReadTenant,
    jobs: FileJobsDep,
) -> Response:
    number = number_or_not_found(jobs.ids, job_id, "job")
    return json_response(_job_view(jobs, await jobs.view(number, tenant)))
