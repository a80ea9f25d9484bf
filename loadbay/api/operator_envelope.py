"""The operator data API envelopes: `{success: true, data}` and `{success: false, error}`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from loadbay.api.responses import json_response
from loadbay.outcomes import RecordError

# Domain codes as the contract names them; a few change status to match it.
_CODES: dict[str, tuple[int | None, str]] = {
    "malformed_json": (None, "INVALID_INPUT"),
    "empty_body": (None, "INVALID_INPUT"),
    "invalid_body": (400, "INVALID_INPUT"),
    "empty_batch": (None, "INVALID_INPUT"),
    "batch_too_large": (400, "INVALID_INPUT"),
    "invalid_parameter": (400, "INVALID_INPUT"),
    "invalid_template": (400, "INVALID_INPUT"),
    "internal_error": (None, "INTERNAL_ERROR"),
}


# This contract's spelling of record errors; the others are their names in capitals.
_RECORD_ERRORS: dict[str, str] = {
    RecordError.INVALID: "VALIDATION_FAILED",
    RecordError.DUPLICATE: "VALIDATION_FAILED",
    RecordError.CONFLICT: "VALIDATION_FAILED",
    RecordError.TYPE_CONFLICT: "ENTITY_TYPE_CONFLICT",
    RecordError.REFERENCE_NOT_FOUND: "ENTITY_NOT_FOUND",
}


def record_error_code(error: str) -> str:
    """A record's error (RecordError) as this contract spells it."""
    return _RECORD_ERRORS.get(error, error.upper())


class OperatorError(BaseModel):
    code: str
    message: str


class OperatorErrorBody(BaseModel):
    success: bool = False
    error: OperatorError


def operator_envelope(status: int, code: str, message: str, details: Any) -> tuple[int, Any]:
    override, contract_code = _CODES.get(code, (None, code.upper()))
    error: dict[str, Any] = {"code": contract_code, "message": message}
    if details is not None:
        error["details"] = details
    return override or status, {"success": False, "error": error}


def success(data: Any, status_code: int = 200) -> Response:
    return json_response({"success": True, "data": data}, status_code=status_code)


def timestamp_ms(value: datetime | None) -> str | None:
    """ISO 8601 in UTC to the millisecond, as this API's contract shows."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
