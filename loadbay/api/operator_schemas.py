"""Shapes of the operator data API, for OpenAPI (records are validated by the template)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from loadbay.api.pagination import Pagination


class EntityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entityType: str = Field(examples=["player"])
    externalId: str = Field(max_length=255, examples=["player_001"])
    data: dict[str, Any] = Field(description="Validated by the template's entity type schema.")


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    externalId: str = Field(max_length=255, description="An existing entity.")
    eventType: str = Field(examples=["transaction"])
    data: dict[str, Any]
    eventId: str | None = Field(
        None, max_length=255, description="Makes the event idempotent: resending it is a no-op."
    )


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    externalId: str = Field(max_length=255)
    stateKey: str = Field(examples=["balance"])
    value: Any = Field(description="Any JSON, validated by the template's state key schema.")


class EntityBatch(RootModel[list[EntityIn]]):
    pass


class EventBatch(RootModel[list[EventIn]]):
    pass


class StateBatch(RootModel[list[StateIn]]):
    pass


class RecordError(BaseModel):
    index: int
    externalId: str | None
    code: str
    message: str


class BatchData(BaseModel):
    jobId: str
    succeeded: int
    failed: int
    errors: list[RecordError]


class BatchResponse(BaseModel):
    success: Literal[True]
    data: BatchData


class ValidationData(BaseModel):
    valid: int
    failed: int
    errors: list[RecordError]


class ValidationResponse(BaseModel):
    success: Literal[True]
    data: ValidationData


class JobOutput(BaseModel):
    succeeded: int
    failed: int
    errors: list[RecordError]


class JobData(BaseModel):
    id: str
    type: str
    status: Literal["processing", "completed", "failed"]
    progress: int
    output: JobOutput
    error: str | None
    created_at: str
    completed_at: str | None


class JobResponse(BaseModel):
    success: Literal[True]
    data: JobData


class SettingsIn(BaseModel):
    """Either a built-in template by id, or a whole template."""

    templateId: str | None = Field(None, examples=["igaming"])
    template: dict[str, Any] | None = Field(
        None, description="{templateId?, entityTypes: {name: {schema}}, eventTypes, stateKeys}"
    )


class SettingsData(BaseModel):
    templateId: str
    template: dict[str, Any]
    updatedAt: str


class SettingsResponse(BaseModel):
    success: Literal[True]
    data: SettingsData


class EntityUpserted(BaseModel):
    entityType: str
    externalId: str
    status: Literal["created", "updated"]


class EntityUpsertResponse(BaseModel):
    success: Literal[True]
    data: EntityUpserted


class StateOut(BaseModel):
    value: Any
    version: int
    updatedAt: str


class EntityOut(BaseModel):
    entityType: str
    externalId: str
    data: dict[str, Any]
    version: int
    createdAt: str
    updatedAt: str
    states: dict[str, StateOut]


class EntityResponse(BaseModel):
    success: Literal[True]
    data: EntityOut


class EventOut(BaseModel):
    eventId: str
    eventType: str
    data: dict[str, Any]
    createdAt: str


class EventPage(BaseModel):
    success: Literal[True]
    data: list[EventOut]
    pagination: Pagination


class Erased(BaseModel):
    entityType: str
    externalId: str
    eventsErased: int
    statesErased: int
    erasedAt: str


class ErasedResponse(BaseModel):
    success: Literal[True]
    data: Erased
