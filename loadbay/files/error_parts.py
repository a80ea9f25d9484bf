"""A file job's error files: one part object per chunk with failed lines, joined at the end.

A chunk writes its parts just before its commit (and overwrites them if it is ever redone);
the parts are joined into `<file>_errors` and `<file>_failedEntities` when the job ends, in
line order: complete, and without duplicate lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from loadbay.files.store import FileStore
from loadbay.outcomes import RecordError

# A failed line: (record id or line number, error code, message).
FailedLine = tuple[str, str, str]

# The instances contract's spelling of the errors its records can meet (FOLIO's).
CONTRACT_CODES: dict[str, str] = {
    RecordError.INVALID: "VALIDATION_ERROR",
    RecordError.INVALID_JSON: "INVALID_JSON",
    RecordError.DUPLICATE: "UNIQUE_VIOLATION",
    RecordError.VERSION_CONFLICT: "OPTIMISTIC_LOCKING",
    RecordError.REFERENCE_NOT_FOUND: "LINKED_INSTANCE_NOT_FOUND",
}


@dataclass(frozen=True)
class ErrorFiles:
    records: str
    errors: str


def error_files(records_file: str) -> ErrorFiles:
    return ErrorFiles(f"{records_file}_failedEntities", f"{records_file}_errors")


class ErrorParts:
    def __init__(self, files: FileStore) -> None:
        self._files = files

    async def stored(self, tenant: str, name: str) -> set[str]:
        """The error parts of the job's chunks stored so far (at a run's start, also those of
        chunks an earlier run wrote but may not have committed)."""
        files = error_files(name)
        return {
            part.name
            for base in (files.errors, files.records)
            for part in await self._files.list(tenant, f"{base}.parts/")
        }

    async def write(
        self,
        tenant: str,
        name: str,
        number: int,
        failed: Mapping[int, FailedLine],
        raw_by_line: Mapping[int, bytes],
        parts: set[str],
    ) -> None:
        """Chunk `number`'s error parts; `parts`, those stored, is kept up to date."""
        files = error_files(name)
        names = [_part(base, number) for base in (files.errors, files.records)]
        if not failed:
            # A redone chunk may have failed records the first time and none now. Only then:
            # two deletes a chunk were two requests inside its transaction on S3.
            for part in names:
                if part in parts:
                    await self._files.delete(tenant, part)
                    parts.discard(part)
            return
        ordered = sorted(failed)
        errors = "".join(
            f"{failed[n][0]}, {_contract_code(failed[n][1])}: {_one_line(failed[n][2])}\n"
            for n in ordered
        )
        records = b"".join(raw_by_line[n] + b"\n" for n in ordered)
        await self._files.put_bytes(tenant, names[0], errors.encode())
        await self._files.put_bytes(tenant, names[1], records)
        parts.update(names)

    async def assemble(self, tenant: str, name: str) -> set[str]:
        """Write both error files from the parts stored; returns those parts (for `remove`,
        once the job is marked done: a crash before that rebuilds the files)."""
        files = error_files(name)
        parts = await self.stored(tenant, name)
        for base in (files.errors, files.records):
            own = sorted(part for part in parts if part.startswith(f"{base}.parts/"))
            await self._files.put(tenant, base, self._joined(tenant, own), max_bytes=2**62)
        return parts

    async def remove(self, tenant: str, parts: set[str]) -> None:
        for part in parts:
            await self._files.delete(tenant, part)

    async def _joined(self, tenant: str, parts: list[str]) -> AsyncIterator[bytes]:
        for part in parts:
            async for data in await self._files.read(tenant, part):
                yield data


def _part(base: str, number: int) -> str:
    return f"{base}.parts/{number:010d}"


def _contract_code(error: str) -> str:
    return CONTRACT_CODES.get(error, error.upper())


def _one_line(message: str) -> str:
    return message.replace("\n", " ").replace("\r", " ")
