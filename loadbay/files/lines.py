"""Lines of a (possibly gzipped) file streamed from the object store, in flat memory."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, AsyncIterator


async def line_blocks(chunks: AsyncIterable[bytes], *, gzipped: bool) -> AsyncIterator[list[bytes]]:
    """The lines, each without its newline (a last line without one is a line too), as one
    list for each block read: one step of an async iteration per block, not per line."""
    inflate = zlib.decompressobj(wbits=31) if gzipped else None
    pending = b""
    async for chunk in chunks:
        data = inflate.decompress(chunk) if inflate is not None else chunk
        if not data:
            continue
        parts = (pending + data).split(b"\n")
        pending = parts.pop()
        if parts:
            yield [line.removesuffix(b"\r") for line in parts]
    if inflate is not None:
        pending += inflate.flush()
        if not inflate.eof:
            raise ValueError("the gzip stream ends early: the file is truncated")
    if pending:
        yield [pending.removesuffix(b"\r")]


def is_gzipped(name: str) -> bool:
    return name.endswith(".gz")
