"""A records file read as numbered chunks of NDJSON lines, each parsed and validated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Container, Iterator
from dataclasses import dataclass

import orjson

from loadbay.files.error_parts import FailedLine
from loadbay.files.lines import is_gzipped, line_blocks, line_count
from loadbay.files.store import FileStore
from loadbay.ingest.collection import Collection
from loadbay.ingest.engine import PreparedRecords, prepare_records
from loadbay.outcomes import RecordError
from loadbay.storage.types import utcnow

# Lines parsed between two chances for the chunks being written to send their next statement.
_YIELD_EVERY = 250


@dataclass
class Chunk:
    number: int
    # The number of its first line, counted from 1: a chunk's lines are consecutive.
    first_line: int
    # Each line's bytes (not a (number, bytes) pair each: two objects a line fewer).
    lines: list[bytes]

    def numbered(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line) of each line."""
        return enumerate(self.lines, self.first_line)

    def line(self, line_no: int) -> bytes:
        return self.lines[line_no - self.first_line]


@dataclass
class ParsedChunk:
    chunk: Chunk
    prepared: PreparedRecords
    # Lines that failed before the database, by line number.
    failed: dict[int, FailedLine]


async def count_lines(files: FileStore, tenant: str, name: str) -> int:
    return await line_count(await files.read(tenant, name), gzipped=is_gzipped(name))


async def read_chunks(
    files: FileStore, tenant: str, name: str, size: int, committed: Container[int]
) -> AsyncIterator[Chunk]:
    """The file's chunks of `size` lines, but those committed already."""
    current: list[bytes] = []
    number, line_no = 0, 0
    async for block in line_blocks(await files.read(tenant, name), gzipped=is_gzipped(name)):
        for line in block:
            number = line_no // size
            line_no += 1
            if number in committed:
                continue
            current.append(line)
            if line_no % size == 0:
                yield Chunk(number, number * size + 1, current)
                current = []
    if current:
        yield Chunk(number, number * size + 1, current)


async def parse_chunk(collection: Collection, tenant: str, chunk: Chunk) -> ParsedChunk:
    """Each line parsed and validated, its row built; blank lines skipped."""
    records, failed = [], {}
    for count, (line_no, raw) in enumerate(chunk.numbered(), 1):
        if count % _YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let the chunks being written take their next step
        if not raw or raw.isspace():  # not `strip()`: no copy of every line
            continue
        try:
            records.append((line_no, orjson.loads(raw)))
        except orjson.JSONDecodeError as error:
            failed[line_no] = (str(line_no), RecordError.INVALID_JSON, f"line is not JSON: {error}")
    prepared = prepare_records(
        collection, tenant, records, mode=collection.on_conflict, now=utcnow()
    )
    return ParsedChunk(chunk, prepared, failed)
