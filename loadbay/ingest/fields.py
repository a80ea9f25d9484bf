"""Declarative record validation: each field names its parser; errors name the field."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from loadbay.outcomes import RecordError

Parser = Callable[[Any], Any]
INT32_MAX = 2**31 - 1


class RecordInvalid(Exception):
    """A record that cannot be written; fails that record alone."""

    def __init__(self, message: str, code: RecordError = RecordError.INVALID) -> None:
        super().__init__(message)
        self.code = code
        # Messages are stored as text, which PostgreSQL refuses to hold NUL characters in.
        self.message = message.replace("\x00", "\\u0000")


_ABSENT = object()


@dataclass(frozen=True)
class Field:
    name: str
    parse: Parser
    required: bool = True


def quoted(name: str, limit: int = 64) -> str:
    """A field name safe to echo in a message: JSON-escaped (no NUL bytes) and bounded."""
    if len(name) > limit:
        name = name[:limit] + "…"
    return orjson.dumps(name).decode()


def text(max_length: int = 255) -> Parser:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if not value or value.isspace():  # not `strip()`: no copy of every value
            raise ValueError("must not be blank")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    return parse


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(value: Any) -> date:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a valid calendar date") from None


def positive_int(maximum: int = INT32_MAX) -> Parser:
    def parse(value: Any) -> int:
        # bool is an int in Python, and 5.0 is a float in JSON: neither is an integer here.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if value < 1:
            raise ValueError("must be a positive integer")
        if value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value

    return parse


def record_validator(fields: Sequence[Field]) -> Callable[[Any], dict[str, Any]]:
    """A validator that returns the parsed fields or raises RecordInvalid naming every bad one.

    Unknown fields are rejected: a typo must not silently drop a value.
    """
    known = {f.name for f in fields}
    # Plain tuples, one lookup of the record per field: this runs once per record and field.
    checks = [(f.name, f.parse, f.required) for f in fields]

    def validate(record: Any) -> dict[str, Any]:
        # A decoded JSON body holds dicts: skip the slower ABC check for them.
        if type(record) is not dict and not isinstance(record, Mapping):
            raise RecordInvalid("record must be a JSON object")
        problems: list[str] = []
        parsed: dict[str, Any] = {}
        present = 0  # known fields the record has, null or not
        for name, parse, required in checks:
            value = record.get(name, _ABSENT)
            if value is not _ABSENT:
                present += 1
            if value is None or value is _ABSENT:
                if required:
                    problems.append(f"missing required field {quoted(name)}")
                continue
            try:
                parsed[name] = parse(value)
            except ValueError as error:
                problems.append(f"field {quoted(name)} {error}")
        if present != len(record):
            problems.extend(f"unknown field {quoted(n)}" for n in record if n not in known)
        if problems:
            raise RecordInvalid("; ".join(problems))
        return parsed

    return validate
