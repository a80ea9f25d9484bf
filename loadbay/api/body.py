"""Reading a JSON request body raw: bounded in size, parsed once with orjson."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from loadbay.errors import InvalidInput, PayloadTooLarge, UnprocessableInput, UnsupportedMediaType

Model = TypeVar("Model", bound=BaseModel)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The parsed body; a clear 4xx for a wrong media type, an oversized body or bad JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, not {media_type or 'missing'}"
        )
    body = await read_bytes(request, max_bytes)
    if not body.strip():
        raise InvalidInput("request body is empty", code="empty_body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(
            f"request body is not valid JSON: {error}", code="malformed_json"
        ) from None


async def read_bytes(request: Request, max_bytes: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `max_bytes`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(body)


async def read_model(request: Request, model: type[Model], max_bytes: int) -> Model:
    """A small JSON body validated as a whole against a pydantic model."""
    data = await read_json(request, max_bytes)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise UnprocessableInput(
            "; ".join(_describe(e) for e in error.errors()),
            code="invalid_body",
            details=[{"field": _location(e["loc"]), "message": e["msg"]} for e in error.errors()],
        ) from None


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {max_bytes} bytes")


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _describe(error: Any) -> str:
    return f"{_location(error['loc'])}: {error['msg']}"


def batch_items(request: Request, items: Any, *, what: str, max_items: int) -> list[Any]:
    """A non-empty JSON array of at most `max_items` records, or a clear 4xx; its length is
    noted for the request's access log line."""
    if not isinstance(items, list):
        raise InvalidInput(f"{what} must be a JSON array", code="invalid_body")
    if not items:
        raise InvalidInput(f"{what} must not be empty", code="empty_batch")
    if len(items) > max_items:
        raise PayloadTooLarge(
            f"{what} has {len(items)} records; at most {max_items} are accepted per request",
            code="batch_too_large",
        )
    request.state.records = len(items)
    return items
