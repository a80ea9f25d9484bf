"""The object store behind one interface: a local folder by default, S3 in production.

Every tenant has a space of its own (`tenants/<tenant>/`); names are checked so that no name
reaches outside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import obstore
from obstore.store import from_url

from loadbay.errors import InvalidInput, NotFound, PayloadTooLarge

_SEGMENT = re.compile(r"[^\x00-\x1f\x7f\\]+")
# A local file is read this much at a time (see _local_blocks).
_LOCAL_READ_BYTES = 2**20


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    last_modified: datetime


def check_name(name: str) -> str:
    """A file name inside a tenant's space: relative, no `..`, no control characters."""
    segments = name.split("/")
    if (
        not name
        or len(name) > 1024
        or any(s in ("", ".", "..") or not _SEGMENT.fullmatch(s) for s in segments)
    ):
        raise InvalidInput(
            f"invalid file name {name[:100]!r}: use a relative path of '/'-separated names, "
            "without '..', '.', empty parts, backslashes or control characters",
            code="invalid_file_name",
        )
    return name


class FileStore:
    def __init__(self, url: str, **options: Any) -> None:
        parts = urlsplit(url)
        # The folder of a local store: its object paths are paths below it.
        self._root = Path(unquote(parts.path)) if parts.scheme == "file" else None
        if self._root is not None:
            self._root.mkdir(parents=True, exist_ok=True)
            self._store = from_url(url)
        elif parts.scheme == "s3":
            self._store = from_url(url, **options)
        else:
            raise ValueError(f"LOADBAY_FILES_URL: unsupported scheme {parts.scheme!r} (file, s3)")

    def _path(self, tenant_id: str, name: str) -> str:
        return f"tenants/{tenant_id}/{check_name(name)}"

    async def put(
        self, tenant_id: str, name: str, chunks: AsyncIterable[bytes], *, max_bytes: int
    ) -> int:
        """Store a stream (multipart for large ones); returns its size."""
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"file is larger than {max_bytes} bytes")
                if chunk:
                    yield chunk

        await obstore.put_async(self._store, self._path(tenant_id, name), counted())
        return size

    async def put_bytes(self, tenant_id: str, name: str, data: bytes) -> None:
        await obstore.put_async(self._store, self._path(tenant_id, name), data)

    async def size(self, tenant_id: str, name: str) -> int:
        try:
            meta = await obstore.head_async(self._store, self._path(tenant_id, name))
        except FileNotFoundError:
            raise NotFound(f"file {name!r} not found") from None
        return int(meta["size"])

    async def read(self, tenant_id: str, name: str) -> AsyncIterator[bytes]:
        """The file's bytes as a stream, never whole in memory."""
        path = self._path(tenant_id, name)
        try:
            if self._root is not None:
                await obstore.head_async(self._store, path)
                return _local_blocks(self._root / path, name)
            result = await obstore.get_async(self._store, path)
        except FileNotFoundError:
            raise NotFound(f"file {name!r} not found") from None
        return _chunks(result)

    async def list(self, tenant_id: str, prefix: str = "") -> list[FileInfo]:
        root = f"tenants/{tenant_id}/"
        # The store matches prefixes by whole path segments: it is asked for the folder the
        # prefix ends in (a job's error parts, not every file of the tenant), the rest of the
        # prefix is matched here.
        folder = prefix[: prefix.rfind("/") + 1]
        found = []
        async for batch in obstore.list(self._store, prefix=root + folder):
            for meta in batch:
                name = meta["path"].removeprefix(root)
                if name.startswith(prefix):
                    found.append(FileInfo(name, int(meta["size"]), meta["last_modified"]))
        return sorted(found, key=lambda f: f.name)

    async def delete(self, tenant_id: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self._store, self._path(tenant_id, name))


async def _chunks(result: Any) -> AsyncIterator[bytes]:
    async for chunk in result.stream(min_chunk_size=256 * 1024):
        yield bytes(chunk)


async def _local_blocks(path: Path, name: str) -> AsyncIterator[bytes]:
    """A local file, read from one open file in blocks of `_LOCAL_READ_BYTES`: obstore
    streams a local file 8 KiB at a time, each read a task on a thread pool (1.6-2.1 s for
    150 MB, against 0.1 s here). The open file is read to its end as it was, also if the
    file is replaced or deleted meanwhile, as obstore's stream did."""
    try:
        file = await asyncio.to_thread(path.open, "rb")
    except FileNotFoundError:
        raise NotFound(f"file {name!r} not found") from None
    with file:
        while data := await asyncio.to_thread(file.read, _LOCAL_READ_BYTES):
            yield data
