"""Domain dataclasses built from result rows whose columns bear the fields' names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_row(cls: type[T], row: Mapping[str, Any], **given: Any) -> T:
    """An instance of the dataclass `cls`: each field from `given`, else from the row's column
    of the same name; fields in neither keep their defaults."""
    values = {
        f.name: given[f.name] if f.name in given else row[f.name]
        for f in fields(cls)  # type: ignore[arg-type]
        if f.name in given or f.name in row
    }
    return cls(**values)
