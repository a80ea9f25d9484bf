"""OpenAPI for bodies that routes read raw (to fail bad records alone, not the request)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def json_request_body(model: type[BaseModel]) -> dict[str, Any]:
    """An `openapi_extra` documenting `model` as the required JSON request body."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, definitions)}},
        }
    }


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node
