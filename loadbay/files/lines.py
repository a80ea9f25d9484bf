"""Lines of a (possibly gzipped) file streamed from the object store, in flat memory."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, AsyncIterator

_INFLATED_BYTES = 4 * 2**20


async def line_blocks(chunks: AsyncIterable[bytes], *, gzipped: bool) -> AsyncIterator[list[bytes]]:
    """The lines, each without its newline (a last line without one is a line too), as one
    list for each block read: one step of an async iteration per block, not per line."""
    pending = b""
    async for data in _decompressed(chunks, gzipped=gzipped):
        joined = pending + data
        parts = joined.split(b"\n")
        pending = parts.pop()
        if parts:
            # A search of the block spares a new bytes object a line where no line has \r.
            yield [line.removesuffix(b"\r") for line in parts] if b"\r" in joined else parts
    if pending:
        yield [pending.removesuffix(b"\r")]


async def line_count(chunks: AsyncIterable[bytes], *, gzipped: bool) -> int:
    """How many lines `line_blocks` yields, counted without splitting them (a job counts its
    file before its first chunk: 0.15 against 0.21 s for 1,000,000 lines read locally)."""
    count, last = 0, b"\n"
    async for data in _decompressed(chunks, gzipped=gzipped):
        count += data.count(b"\n")
        last = data[-1:]
    return count + (last != b"\n")


async def _decompressed(chunks: AsyncIterable[bytes], *, gzipped: bool) -> AsyncIterator[bytes]:
    """The file's bytes, inflated if gzipped, in non-empty blocks of at most
    `_INFLATED_BYTES` inflated: 1 MiB of gzip can hold a GiB of repetitive lines."""
    if not gzipped:
        async for chunk in chunks:
            if chunk:
                yield chunk
        return
    inflate = zlib.decompressobj(wbits=31)
    async for chunk in chunks:
        pending = chunk
        while pending:
            data = inflate.decompress(pending, _INFLATED_BYTES)
            if data:
                yield data
            pending = inflate.unconsumed_tail
    rest = inflate.flush()
    if not inflate.eof:
        raise ValueError("the gzip stream ends early: the file is truncated")
    if rest:
        yield rest


def is_gzipped(name: str) -> bool:
    return name.endswith(".gz")
