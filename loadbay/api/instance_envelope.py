"""The instance API's error shape, as FOLIO's: `{"errors": [{message, type, code, parameters}]}`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Parameter(BaseModel):
    key: str
    value: str


class InstanceError(BaseModel):
    message: str
    type: str
    code: str
    parameters: list[Parameter]


class InstanceErrors(BaseModel):
    errors: list[InstanceError]
    total_records: int


def instance_envelope(status: int, code: str, message: str, details: Any) -> tuple[int, Any]:
    if status >= 500:
        return status, "Internal server error"
    return status, {
        "errors": [
            {"message": message, "type": "1", "code": code, "parameters": _parameters(details)}
        ],
        "total_records": 1,
    }


def _parameters(details: Any) -> list[dict[str, str]]:
    if isinstance(details, list):
        return [
            {
                "key": str(d.get("key", d.get("field", ""))),
                "value": str(d.get("value", d.get("message", ""))),
            }
            for d in details
            if isinstance(d, dict)
        ]
    if isinstance(details, dict):
        return [{"key": str(k), "value": str(v)} for k, v in details.items()]
    return []
