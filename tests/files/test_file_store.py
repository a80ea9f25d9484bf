"""The object store's reads of a local folder: in ranges, whole, and never two versions mixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadbay.errors import Conflict
from loadbay.files.store import FileStore

# Larger than one range of a local read.
_BIG = bytes(range(256)) * (3 * 2**20 // 256 + 7)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path.as_uri())


async def test_a_file_of_several_ranges_reads_whole(store: FileStore) -> None:
    await store.put_bytes("t1", "big.bin", _BIG)
    await store.put_bytes("t1", "empty.bin", b"")

    pieces = [piece async for piece in await store.read("t1", "big.bin")]

    assert len(pieces) > 1
    assert b"".join(pieces) == _BIG
    assert [piece async for piece in await store.read("t1", "empty.bin")] == []


@pytest.mark.parametrize("change", ["replaced", "deleted"])
async def test_a_file_changed_while_read_is_a_conflict(store: FileStore, change: str) -> None:
    await store.put_bytes("t1", "big.bin", _BIG)
    pieces = await store.read("t1", "big.bin")
    first = await anext(pieces)

    if change == "replaced":
        await store.put_bytes("t1", "big.bin", _BIG[::-1])
    else:
        await store.delete("t1", "big.bin")

    with pytest.raises(Conflict, match=r"'big\.bin' was replaced or deleted while it was read"):
        async for _ in pieces:
            pass
    assert _BIG.startswith(first)
