"""Records taken for new without reading what is stored (`guess_new`, a file's chunks): a
right guess inserts them; a wrong one writes nothing, and the writes after it read first."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from loadbay.ingest.engine import prepare_records, write_prepared
from loadbay.ingest.instances import OptimisticLocking, instances_collection
from loadbay.outcomes import Outcome
from loadbay.storage.bulk import StoredKeysMet
from loadbay.storage.database import Database
from loadbay.storage.tables import instances
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow
from tests.api.instances.helpers import instance

COLLECTION = instances_collection("in", OptimisticLocking.OFF)


async def _write(
    db: Database, tenant: str, numbers: list[int], *, guess_new: bool = True
) -> Counter[Outcome]:
    records = [(n, instance(n, title=f"{tenant} {n}")) for n in numbers]
    prepared = prepare_records(
        COLLECTION, tenant, records, mode=COLLECTION.on_conflict, now=utcnow()
    )
    async with db.write() as unit:
        await write_prepared(
            unit,
            COLLECTION,
            tenant,
            prepared,
            chunk_size=1000,
            count_successes=True,
            guess_new=guess_new,
        )
    return prepared.succeeded


async def _stored(db: Database, tenant: str) -> int:
    async with db.read() as conn:
        query = select(func.count()).select_from(instances).where(instances.c.tenant_id == tenant)
        return int((await conn.execute(query)).scalar_one())


async def test_a_wrong_guess_writes_nothing_and_the_next_write_reads_first(
    database_url: str, backend: str
) -> None:
    db = Database(database_url)
    try:
        async with db.write() as unit:
            for tenant in ("t1", "t2"):
                await ensure_tenant(unit.conn, tenant, tenant)
        first = await _write(db, "t1", [1, 2])
        if backend == "postgres":
            # Nothing met a stored key in t1 yet: taken for new, and 2 is stored.
            with pytest.raises(StoredKeysMet):
                await _write(db, "t1", [2, 3])
        after_miss = await _stored(db, "t1")
        async with db.write() as unit:
            likely = [unit.bulk.new_keys_likely(instances, t) for t in ("t1", "t2")]
        again = await _write(db, "t1", [2, 3])
        # Another tenant's writes still guess: its keys are its own.
        other = await _write(db, "t2", [2])
    finally:
        await db.dispose()

    assert first == {Outcome.CREATED: 2}
    assert after_miss == 2
    # SQLite never guesses (its read is local); PostgreSQL's writes to t1 read for a while.
    assert likely == ([False, True] if backend == "postgres" else [False, False])
    assert again == {Outcome.UPDATED: 1, Outcome.CREATED: 1}
    assert other == {Outcome.CREATED: 1}


async def test_a_read_that_finds_stored_keys_stops_the_guesses(
    database_url: str, backend: str
) -> None:
    """A long re-load reads first in every chunk, not only in the window after a wrong guess."""
    if backend == "sqlite":
        pytest.skip("SQLite never guesses")
    db = Database(database_url)
    try:
        async with db.write() as unit:
            await ensure_tenant(unit.conn, "t1", "t1")
        await _write(db, "t1", [1], guess_new=False)
        async with db.write() as unit:
            before = unit.bulk.new_keys_likely(instances, "t1")
        await _write(db, "t1", [1, 2], guess_new=False)
        async with db.write() as unit:
            after = unit.bulk.new_keys_likely(instances, "t1")
    finally:
        await db.dispose()

    assert (before, after) == (True, False)
