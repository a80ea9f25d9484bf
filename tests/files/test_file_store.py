"""Reads of the object store's local folder: in blocks, whole, each of one version."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadbay.errors import NotFound
from loadbay.files.store import FileStore

# Larger than one block of a local read.
_BIG = bytes(range(256)) * (3 * 2**20 // 256 + 7)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    # A folder whose URL has escapes (as_uri writes the space and '#' as %20 and %23).
    return FileStore((tmp_path / "data #1").as_uri())


async def test_a_file_of_several_blocks_reads_whole(store: FileStore) -> None:
    await store.put_bytes("t1", "in/big.bin", _BIG)
    await store.put_bytes("t1", "empty.bin", b"")

    pieces = [piece async for piece in await store.read("t1", "in/big.bin")]

    assert len(pieces) > 1
    assert b"".join(pieces) == _BIG
    assert [piece async for piece in await store.read("t1", "empty.bin")] == []


@pytest.mark.parametrize("change", ["replaced", "deleted"])
async def test_a_file_changed_while_read_is_read_whole_as_it_was(
    store: FileStore, change: str
) -> None:
    await store.put_bytes("t1", "big.bin", _BIG)
    pieces = await store.read("t1", "big.bin")
    first = await anext(pieces)

    if change == "replaced":
        await store.put_bytes("t1", "big.bin", _BIG[::-1])
    else:
        await store.delete("t1", "big.bin")

    assert first + b"".join([piece async for piece in pieces]) == _BIG


async def test_a_missing_file_is_not_found_before_any_byte(store: FileStore) -> None:
    with pytest.raises(NotFound, match=r"'nothing\.bin' not found"):
        await store.read("t1", "nothing.bin")
