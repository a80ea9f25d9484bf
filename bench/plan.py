"""How much each part of a run sends, and the run's scratch space and databases."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import pg

FULL_RECORDS = 200_000
QUICK_RECORDS = 50_000
CLIENT_LEVELS = (1, 4, 16)


@dataclass(frozen=True)
class Plan:
    db: str  # "postgres" | "sqlite"
    records: int  # entities at 4 clients; every other size derives from it
    quick: bool

    def entities(self, clients: int) -> int:
        # One client is the slowest level: a quarter of the records keeps the run short.
        return self.records // 4 if clients == 1 else self.records

    @property
    def events(self) -> int:
        return self.records

    @property
    def activities(self) -> int:
        return self.records

    @property
    def file_lines(self) -> tuple[int, ...]:
        return (20_000,) if self.quick else (100_000, 1_000_000)

    @property
    def ceiling_records(self) -> int:
        # The ceiling is fast: at least 100,000 rows so that it runs long enough to time.
        return max(self.records, 100_000)

    @property
    def peer_records(self) -> int:
        return self.records

    @property
    def floor_records(self) -> int:
        # One statement per record is slow by design: a tenth, but at least two requests per
        # client (8,000 records) so that the rate is not that of a single request.
        return max(8000, self.records // 10 // 1000 * 1000)


@dataclass
class Run:
    plan: Plan
    tmp: Path
    admin_url: str  # PostgreSQL URL with rights to create databases (unused on SQLite)
    created: list[str] = field(default_factory=list)

    @property
    def postgres(self) -> bool:
        return self.plan.db == "postgres"

    def new_database(self, purpose: str) -> str:
        """Create a fresh PostgreSQL database; `drop_databases()` removes it."""
        name = pg.fresh_name(purpose)
        pg.create(self.admin_url, name)
        self.created.append(name)
        return name

    def drop_databases(self) -> None:
        while self.created:
            name = self.created.pop()
            try:
                pg.drop(self.admin_url, name)
            except Exception as error:  # report it, then go on dropping the others
                print(f"could not drop database {name}: {error}")
