"""The operator data API: `/operator-data-api` (entities, events, states, jobs, settings)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from loadbay.api import operator_schemas as schemas
from loadbay.api.body import batch_items, read_json
from loadbay.api.deps import (
    AdminTenant,
    BatchTenant,
    OperatorDataDep,
    PagingDep,
    ReadTenant,
    SettingsDep,
)
from loadbay.api.errors import error_responses
from loadbay.api.middleware import idempotent_request
from loadbay.api.openapi import json_request_body
from loadbay.api.operator_envelope import (
    OperatorErrorBody,
    record_error_code,
    success,
    timestamp_ms,
)
from loadbay.api.pagination import pagination
from loadbay.api.responses import json_response
from loadbay.config import Settings
from loadbay.errors import Conflict, InvalidInput, NotFound
from loadbay.ingest.ids import number_or_not_found
from loadbay.ingest.operator_service import Entity, OperatorData, TemplateSetting
from loadbay.outcomes import JobStatus, Outcome, RecordError, RecordResult

PREFIX = "/operator-data-api"
router = APIRouter(prefix=PREFIX, tags=["operator data"])

EntityType = Annotated[str, Path(max_length=64)]
ExternalId = Annotated[str, Path(max_length=255)]


def _errors(*statuses: int) -> dict[int | str, Any]:
    return error_responses(401, 403, 429, *statuses, model=OperatorErrorBody)


def _record_error(result: RecordResult) -> dict[str, Any]:
    payload = result.payload
    external_id = payload.get("externalId") if isinstance(payload, dict) else None
    return {
        "index": result.index,
        "externalId": external_id if isinstance(external_id, str) else None,
        "code": record_error_code(result.error or ""),
        "message": result.message,
    }


def _failures(results: list[RecordResult]) -> list[dict[str, Any]]:
    return [_record_error(r) for r in results if not r.succeeded]


def _settings_view(setting: TemplateSetting) -> dict[str, Any]:
    return {
        "templateId": setting.template_id,
        "template": setting.template,
        "updatedAt": timestamp_ms(setting.updated_at),
    }


async def _batch(
    request: Request, service: OperatorData, config: Settings, tenant: str, kind: str, limit: int
) -> Response:
    body = await read_json(request, config.max_body_bytes)
    records = batch_items(request, body, what="request body", max_items=limit)
    job = await service.batch(tenant, kind, records, idempotent_request(request))
    return success(
        {
            "jobId": service.jobs.ids.format(job.id),
            "succeeded": job.succeeded_count,
            "failed": job.failed_count,
            "errors": _failures(job.results),
        }
    )


@router.post(
    "/batch/{kind}/validate",
    summary="Check a batch of entities, events or states without writing it",
    description=(
        "Each record is validated against the tenant's template, and the batch's own "
        "duplicates are settled as a write would. Nothing is stored and no job is made; "
        "conflicts with stored records (ENTITY_TYPE_CONFLICT) and references to them "
        "(ENTITY_NOT_FOUND) are only known when the batch is written."
    ),
    response_model=schemas.ValidationResponse,
    responses=_errors(400, 404, 413, 415),
)
async def validate_batch(
    request: Request,
    kind: str,
    tenant: BatchTenant,
    service: OperatorDataDep,
    config: SettingsDep,
) -> Response:
    limits = {
        "entities": config.max_batch_entities,
        "events": config.max_batch_events,
        "states": config.max_batch_states,
    }
    if kind not in limits:
        raise NotFound(f"no batch of {kind!r}: entities, events or states")
    body = await read_json(request, config.max_body_bytes)
    records = batch_items(request, body, what="request body", max_items=limits[kind])
    failures = _failures(await service.check(tenant, kind, records))
    return success(
        {"valid": len(records) - len(failures), "failed": len(failures), "errors": failures}
    )


@router.post(
    "/batch/entities",
    summary="Upsert up to 1,000 entities",
    response_model=schemas.BatchResponse,
    responses=_errors(400, 413, 415),
    openapi_extra=json_request_body(schemas.EntityBatch),
)
async def batch_entities(
    request: Request,
    tenant: BatchTenant,
    service: OperatorDataDep,
    config: SettingsDep,
) -> Response:
    return await _batch(request, service, config, tenant, "entities", config.max_batch_entities)


@router.post(
    "/batch/events",
    summary="Insert up to 5,000 events of existing entities",
    response_model=schemas.BatchResponse,
    responses=_errors(400, 413, 415),
    openapi_extra=json_request_body(schemas.EventBatch),
)
async def batch_events(
    request: Request,
    tenant: BatchTenant,
    service: OperatorDataDep,
    config: SettingsDep,
) -> Response:
    return await _batch(request, service, config, tenant, "events", config.max_batch_events)


@router.post(
    "/batch/states",
    summary="Upsert up to 1,000 state snapshots",
    response_model=schemas.BatchResponse,
    responses=_errors(400, 413, 415),
    openapi_extra=json_request_body(schemas.StateBatch),
)
async def batch_states(
    request: Request,
    tenant: BatchTenant,
    service: OperatorDataDep,
    config: SettingsDep,
) -> Response:
    return await _batch(request, service, config, tenant, "states", config.max_batch_states)


@router.get(
    "/batch/jobs/{job_id}",
    summary="A batch job's status and output",
    response_model=schemas.JobResponse,
    responses=_errors(404),
)
async def get_job(
    job_id: str,
    tenant: ReadTenant,
    service: OperatorDataDep,
) -> Response:
    job = await service.jobs.get(tenant, number_or_not_found(service.jobs.ids, job_id, "job"))
    done = job.status is not JobStatus.PROCESSING
    return success(
        {
            "id": job_id,
            "type": f"batch_ingest_{job.collection}",
            "status": job.status.value,
            "progress": 100 if done else 0,
            "output": {
                "succeeded": job.succeeded_count,
                "failed": job.failed_count,
                "errors": _failures(job.results),
            },
            "error": None,
            "created_at": timestamp_ms(job.created_at),
            "completed_at": timestamp_ms(job.completed_at),
        }
    )


@router.post(
    "/entities",
    summary="Upsert one entity",
    response_model=schemas.EntityUpsertResponse,
    responses={201: {"model": schemas.EntityUpsertResponse}, **_errors(400, 409, 413, 415)},
    openapi_extra=json_request_body(schemas.EntityIn),
)
async def upsert_entity(
    request: Request,
    tenant: BatchTenant,
    service: OperatorDataDep,
    config: SettingsDep,
) -> Response:
    record = await read_json(request, config.max_body_bytes)
    result = await service.upsert_entity(tenant, record)
    if not result.succeeded:
        error = Conflict if result.error == RecordError.TYPE_CONFLICT else InvalidInput
        raise error(result.message or "", code=record_error_code(result.error or "").lower())
    created = result.outcome is Outcome.CREATED
    return success(
        {
            "entityType": record["entityType"],
            "externalId": record["externalId"],
            "status": result.outcome.value,
        },
        status_code=201 if created else 200,
    )


@router.get(
    "/settings",
    summary="The tenant's template",
    response_model=schemas.SettingsResponse,
    responses=_errors(400),
)
async def get_settings(
    tenant: ReadTenant,
    service: OperatorDataDep,
) -> Response:
    return success(_settings_view(await service.template(tenant)))


@router.put(
    "/settings",
    summary="Set the tenant's template: a built-in one by id, or a custom one",
    response_model=schemas.SettingsResponse,
    responses=_errors(400, 413, 415),
    openapi_extra=json_request_body(schemas.SettingsIn),
)
async def put_settings(
    request: Request,
    tenant: AdminTenant,
    service: OperatorDataDep,
    config: SettingsDep,
) -> Response:
    body = await read_json(request, config.max_body_bytes)
    return success(_settings_view(await service.set_template(tenant, body)))


def _entity_view(entity: Entity) -> dict[str, Any]:
    return {
        "entityType": entity.entity_type,
        "externalId": entity.external_id,
        "data": entity.data,
        "version": entity.version,
        "createdAt": timestamp_ms(entity.created_at),
        "updatedAt": timestamp_ms(entity.updated_at),
        "states": {
            s.key: {"value": s.value, "version": s.version, "updatedAt": timestamp_ms(s.updated_at)}
            for s in entity.states
        },
    }


@router.get(
    "/entities/{entity_type}/{external_id}",
    summary="One entity with its current states",
    response_model=schemas.EntityResponse,
    responses=_errors(404),
)
async def get_entity(
    entity_type: EntityType,
    external_id: ExternalId,
    tenant: ReadTenant,
    service: OperatorDataDep,
) -> Response:
    return success(_entity_view(await service.entity(tenant, entity_type, external_id)))


@router.get(
    "/entities/{entity_type}/{external_id}/events",
    summary="An entity's events, oldest first",
    response_model=schemas.EventPage,
    responses=_errors(404),
)
async def get_entity_events(
    entity_type: EntityType,
    external_id: ExternalId,
    paging: PagingDep,
    tenant: ReadTenant,
    service: OperatorDataDep,
) -> Response:
    found, total = await service.entity_events(
        tenant, entity_type, external_id, offset=paging.offset, limit=paging.limit
    )
    events = [
        {
            "eventId": e.event_id,
            "eventType": e.event_type,
            "data": e.data,
            "createdAt": timestamp_ms(e.created_at),
        }
        for e in found
    ]
    body = {"success": True, "data": events, "pagination": pagination(paging, total)}
    return json_response(body)


@router.delete(
    "/entities/{entity_type}/{external_id}",
    summary="Erase an entity, its states and its events (data-protection requests)",
    response_model=schemas.ErasedResponse,
    responses=_errors(404),
)
async def erase_entity(
    entity_type: EntityType,
    external_id: ExternalId,
    tenant: AdminTenant,
    service: OperatorDataDep,
) -> Response:
    erased = await service.erase(tenant, entity_type, external_id)
    return success(
        {
            "entityType": erased.entity_type,
            "externalId": erased.external_id,
            "eventsErased": erased.events_erased,
            "statesErased": erased.states_erased,
            "erasedAt": timestamp_ms(erased.erased_at),
        }
    )
