"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, DateTime, Dialect, Integer, String, Text
from sqlalchemy.types import TypeDecorator, TypeEngine

# SQLite only auto-increments an INTEGER PRIMARY KEY, not a BIGINT one.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def key_text(length: int) -> TypeEngine[str]:
    """Text that bulk writes look up and index: compared byte by byte on PostgreSQL (COLLATE
    "C"), as SQLite compares all text.

    Under the database's collation (C.UTF-8, en_US.UTF-8, …) each comparison an index
    search or insert makes goes through strcoll, both values copied first: 2,000 keys read
    by a chunk took 12.5-13.8 against 9.8-11.0 us of PostgreSQL's CPU a key, 2,000 rows
    inserted 12.4-15.4 against 10.4-11.0 us a row. Equality is the same; order (`ORDER BY`,
    `<`, `BETWEEN`) follows code points instead of the locale's.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every dialect (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UtcDateTime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class JsonText(TypeDecorator[Any]):
    """JSON kept as text: unlike jsonb it stores any JSON, NUL escapes (\\u0000) included.

    Python None is SQL NULL, unless `none_as_null=False`, where it is the JSON `null`.
    """

    impl = Text()
    cache_ok = True

    def __init__(self, none_as_null: bool = True) -> None:
        super().__init__()
        self.none_as_null = none_as_null

    def raw_encode(self, value: Any) -> str | None:
        """The stored text, also used by the bulk fast paths."""
        if value is None and self.none_as_null:
            return None
        return orjson.dumps(value).decode()

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return self.raw_encode(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return self.raw_decode(value)

    @staticmethod
    def raw_decode(value: str | None) -> Any:
        """The stored value, also used by the bulk fast paths."""
        return None if value is None else orjson.loads(value)
