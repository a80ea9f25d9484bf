"""How far the event feed may read on PostgreSQL without passing an event still to commit.

Transactions that write at the same time take outbox ids in one order and may commit in
another: a feed page read between two such commits, its cursor an id, would pass over the
smaller id that commits just after. So every statement that inserts into the outbox first
takes a shared advisory lock whose key is the outbox sequence's last value, a lower bound of
the ids it is about to take (a BEFORE INSERT trigger on the outbox, for captured and Python
events alike); the lock goes with its transaction, committed or rolled back.

The feed reads the sequence's last value S, then the smallest key m among those locks held:
every id up to min(S, m) is committed (and visible to its next statement) or never will be
(a writer's ids are above its key, the last value before them). A writer not yet locked
when the locks were read takes ids above S; one locked before holds m at most. Readers wait
for nobody and writers for nobody.

It counts on two things, which Loadbay sets: the sequence hands out its ids one at a time
(CACHE 1: a session's cached ids would sit below the last value), and the feed reads in READ
COMMITTED (a snapshot taken before the locks were read would miss what committed between).
A transaction that has written events and stays open (idle in transaction, say) holds back
every tenant's feed until it ends: Loadbay's own are short.

SQLite has one writer at a time: its ids are in commit order, and this does not apply.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# Advisory locks keyed by two int4 (objsubid 2) are ours alone: the others in Loadbay take
# one bigint key (objsubid 1). The id's high bits go in the first, its low 31 in the second.
_LOW_BITS = 31


def postgres_ddl(sequence: str) -> Iterator[str]:
    """The trigger that locks before an outbox insert; `sequence` is the outbox id's."""
    yield f"""
CREATE OR REPLACE FUNCTION loadbay_outbox_writing() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  lowest bigint := coalesce(pg_sequence_last_value('{sequence}'::regclass), 0);
BEGIN
  PERFORM pg_advisory_xact_lock_shared(
    (lowest >> {_LOW_BITS})::int, (lowest & {2**_LOW_BITS - 1})::int);
  RETURN NULL;
END
$$
"""
    yield f"ALTER SEQUENCE {sequence} CACHE 1"
    yield "DROP TRIGGER IF EXISTS loadbay_outbox_writing ON outbox"
    yield (
        "CREATE TRIGGER loadbay_outbox_writing BEFORE INSERT ON outbox FOR EACH STATEMENT "
        "EXECUTE FUNCTION loadbay_outbox_writing()"
    )


def postgres_drop_ddl() -> Iterator[str]:
    yield "DROP TRIGGER IF EXISTS loadbay_outbox_writing ON outbox"
    yield "DROP FUNCTION IF EXISTS loadbay_outbox_writing()"


_SEQUENCE_LAST = text(
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('outbox', 'id')::regclass), 0)"
)
_LOWEST_WRITING = text(
    f"SELECT min((classid::bigint << {_LOW_BITS}) + objid::bigint) FROM pg_locks"
    " WHERE locktype = 'advisory' AND objsubid = 2"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def committed_up_to(conn: AsyncConnection) -> int:
    """The highest outbox id below which nothing is left to commit (PostgreSQL).

    Run in the feed's read transaction, before its read: READ COMMITTED gives each
    statement a new snapshot, so the read sees what this found committed.
    """
    sequence_last = int((await conn.execute(_SEQUENCE_LAST)).scalar_one())
    writing = (await conn.execute(_LOWEST_WRITING)).scalar_one()
    return sequence_last if writing is None else min(sequence_last, int(writing))
