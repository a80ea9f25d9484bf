"""Altering a table inside a migration, which on SQLite means rebuilding it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import op


@contextmanager
def altering(table: str) -> Iterator[Any]:
    """`op.batch_alter_table` that keeps SQLite's AUTOINCREMENT and its counter.

    SQLite rebuilds the table from the rows it holds, so its counter would fall back to the
    highest id left: ids of deleted rows would be handed out again (public ids, the feed's
    cursors). PostgreSQL alters the table in place and keeps its sequence.
    """
    bind = op.get_bind()
    counter = f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'"
    last = bind.exec_driver_sql(counter).scalar() if bind.dialect.name == "sqlite" else None
    with op.batch_alter_table(table, table_kwargs={"sqlite_autoincrement": True}) as batch:
        yield batch
    if last is not None:
        bind.exec_driver_sql(f"DELETE FROM sqlite_sequence WHERE name = '{table}'")
        bind.exec_driver_sql(
            f"INSERT INTO sqlite_sequence (name, seq) VALUES "
            f"('{table}', max(?, coalesce((SELECT max(id) FROM \"{table}\"), 0)))",
            (last,),
        )
