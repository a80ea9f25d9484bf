"""Exit 0 if the test PostgreSQL server answers, 1 otherwise (used by scripts/test)."""

from __future__ import annotations

import asyncio
import sys

from tests.databases import postgres_reachable

if __name__ == "__main__":
    sys.exit(0 if asyncio.run(postgres_reachable()) else 1)
