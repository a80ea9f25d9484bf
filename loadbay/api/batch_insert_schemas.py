"""Request and response shapes of the batch-insert API, for validation and for OpenAPI."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from loadbay.api.pagination import Pagination


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coordinator_id: str = Field(max_length=255, examples=["coord-42"])
    mentor_id: str = Field(max_length=255, examples=["mentor-17"])
    activity_type: str = Field(max_length=255, examples=["group_workshop"])
    activity_date: date = Field(examples=["2026-03-28"])
    duration_minutes: int = Field(ge=1, le=2**31 - 1, examples=[120])


class BatchInsertRequest(BaseModel):
    """Each activity is validated on its own: an invalid one fails alone, in its result."""

    model_config = ConfigDict(extra="forbid")

    activities: list[ActivityIn] = Field(min_length=1)


class RecordResultOut(BaseModel):
    index: int
    activity_id: str | None
    status: Literal["success", "failed"]
    error: str | None = Field(
        None,
        description="On failed records: `validation_error` or `unique_constraint_violation`.",
    )
    message: str | None = Field(None, description="On failed records: what was wrong.")


class BatchCreated(BaseModel):
    id: str
    record_count: int
    status: Literal["completed", "failed"]
    inserted_count: int
    failed_count: int
    results: list[RecordResultOut]


class BatchValidation(BaseModel):
    record_count: int
    valid_count: int
    failed_count: int
    errors: list[RecordResultOut]


class BatchSummary(BaseModel):
    id: str
    record_count: int
    status: Literal["processing", "completed", "failed"]
    inserted_count: int
    failed_count: int
    created_at: str


class BatchList(BaseModel):
    data: list[BatchSummary]
    pagination: Pagination


class BatchDetail(BatchCreated):
    created_at: str
    completed_at: str | None


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retry_indices: list[Annotated[int, Field(strict=True, ge=0)]] = Field(
        min_length=1, max_length=100_000
    )
    ignore_constraints: bool = Field(
        False,
        strict=True,
        description="Resolve a unique collision by updating the stored activity.",
    )


class RetryResponse(BaseModel):
    id: str
    status: Literal["completed", "failed"]
    inserted_count: int
    failed_count: int
    updated_at: str
    results: list[RecordResultOut] = Field(description="The retried records' new results.")


class DeleteResponse(BaseModel):
    message: str
