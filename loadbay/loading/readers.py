"""Records out of a local file: NDJSON, a JSON array or CSV, each optionally gzipped.

Each record comes with its position — its line for NDJSON and CSV, its place (from 1) in a
JSON array — which error files report. A line that is not JSON comes as `Unreadable`.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

FORMATS = ("ndjson", "json", "csv")


@dataclass(frozen=True)
class Unreadable:
    """A line that could not be read as a record; it fails locally, never sent."""

    code: str
    message: str
    text: str


def file_format(path: Path) -> str:
    """ndjson, json or csv, from the name (a .gz suffix aside); NDJSON unless it says else."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last == ".json":
        return "json"
    if last == ".csv":
        return "csv"
    return "ndjson"


def read_records(path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    with _open(path) as raw:
        if fmt == "ndjson":
            yield from _ndjson(raw)
        elif fmt == "json":
            yield from _json_array(raw)
        else:
            yield from _csv(raw)


def count_records(path: Path, fmt: str) -> int:
    """How many records `read_records` will yield: one pass (NDJSON lines are not parsed)."""
    if fmt == "ndjson":
        with _open(path) as raw:
            return sum(1 for line in raw if line.strip())
    return sum(1 for _ in read_records(path, fmt))


def _open(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def _ndjson(raw: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(raw, 1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as error:
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            yield number, Unreadable("INVALID_JSON", f"line is not JSON: {error}", text)


def _json_array(raw: IO[bytes]) -> Iterator[tuple[int, Any]]:
    # A JSON array is read whole: for files larger than memory, use NDJSON.
    document = orjson.loads(raw.read())
    if not isinstance(document, list):
        raise ValueError("a .json records file must hold one JSON array")
    yield from enumerate(document, 1)


def _csv(raw: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """A row per record, keyed by the header. Cells are text unless the column says otherwise
    (`duration_minutes:int`, `amount:number`, `active:bool`, `value:json`); `a.b` columns nest
    (`{"a": {"b": …}}`); an empty cell is left out. A cell its type refuses fails the row."""
    with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        yield from _csv_rows(csv.reader(text))


def _csv_rows(reader: Any) -> Iterator[tuple[int, Any]]:
    header = next(reader, None)
    if header is None:
        return
    columns = [_column(name) for name in header]
    for row in reader:
        if not any(row):
            continue
        try:
            record: dict[str, Any] = {}
            for (path, convert), cell in zip(columns, row, strict=False):
                if cell != "":
                    _put(record, path, convert(cell))
        except ValueError as error:
            yield reader.line_num, Unreadable("INVALID_CELL", str(error), ",".join(row))
            continue
        yield reader.line_num, record


def _column(name: str) -> tuple[list[str], Any]:
    path, _, kind = name.partition(":")
    if kind not in _CONVERTERS:
        raise ValueError(
            f"CSV column {name!r}: the type after ':' must be one of {list(_CONVERTERS)}"
        )
    return path.split("."), _CONVERTERS[kind]


def _put(record: dict[str, Any], path: list[str], value: Any) -> None:
    for name in path[:-1]:
        record = record.setdefault(name, {})
    record[path[-1]] = value


def _typed(kind: str, accept: Any) -> Any:
    def convert(cell: str) -> Any:
        try:
            value = orjson.loads(cell)
        except orjson.JSONDecodeError:
            raise ValueError(f"{cell!r} is not a {kind}") from None
        if not accept(value):
            raise ValueError(f"{cell!r} is not a {kind}")
        return value

    return convert


_CONVERTERS: dict[str, Any] = {
    "": str,
    "text": str,
    "int": _typed("int", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "number": _typed("number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    "bool": _typed("bool", lambda v: isinstance(v, bool)),
    "json": _typed("JSON value", lambda v: True),
}
