"""A records file's lines: split and counted alike, in plain and gzipped files."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from loadbay.files.lines import line_blocks, line_count


async def _stream(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    """`data` in pieces cut at `cuts`, as a store streams it."""
    start = 0
    for cut in sorted(cuts):
        yield data[start:cut]
        start = cut
    yield data[start:]


async def _lines(data: bytes, cuts: list[int], gzipped: bool) -> list[bytes]:
    return [
        line async for block in line_blocks(_stream(data, cuts), gzipped=gzipped) for line in block
    ]


@given(
    text=st.binary(max_size=200).map(lambda b: bytes(b"a\n\r"[x % 3] for x in b)),
    cuts=st.lists(st.integers(0, 200), max_size=6),
    gzipped=st.booleans(),
)
@example(text=b"a\r\nb", cuts=[2], gzipped=False)  # a line's \r and \n in two pieces
def test_the_count_is_the_number_of_lines_split(
    text: bytes, cuts: list[int], gzipped: bool
) -> None:
    data = gzip.compress(text) if gzipped else text
    cuts = [min(cut, len(data)) for cut in cuts]

    async def both() -> tuple[list[bytes], int]:
        lines = await _lines(data, cuts, gzipped)
        return lines, await line_count(_stream(data, cuts), gzipped=gzipped)

    lines, count = asyncio.run(both())
    assert count == len(lines)
    # The lines are the text's, without their line ends.
    expected = text.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert lines == [line.removesuffix(b"\r") for line in expected]


@pytest.mark.parametrize(
    ("text", "count"),
    [(b"", 0), (b"\n", 1), (b"a", 1), (b"a\n", 1), (b"a\r\n\nb", 3), (b"a\r", 1)],
)
async def test_line_counts(text: bytes, count: int) -> None:
    assert await line_count(_stream(text, []), gzipped=False) == count
    assert await line_count(_stream(gzip.compress(text), [3]), gzipped=True) == count


async def test_a_truncated_gzip_file_is_refused_by_both() -> None:
    data = gzip.compress(b"a\n" * 1000)[:-10]
    with pytest.raises(ValueError, match="truncated"):
        await line_count(_stream(data, []), gzipped=True)
    with pytest.raises(ValueError, match="truncated"):
        await _lines(data, [], gzipped=True)


async def test_a_highly_compressed_file_inflates_in_bounded_blocks() -> None:
    text = b"{}\n" * 10_000_000  # 30 MB, about 30 kB gzipped
    data = gzip.compress(text)

    sizes = [
        sum(len(line) + 1 for line in block)
        async for block in line_blocks(_stream(data, []), gzipped=True)
    ]

    assert sum(sizes) == len(text)
    # A block's first line may have begun in the bytes before it.
    assert max(sizes) <= 4 * 2**20 + len(b"{}\n")
    assert await line_count(_stream(data, []), gzipped=True) == 10_000_000
