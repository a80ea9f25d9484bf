"""Public ids such as `pa-020` or `job_00000000000000a1`: a prefix and the row's number."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ROW_ID = 2**63 - 1


@dataclass(frozen=True)
class PublicIds:
    prefix: str
    width: int = 3

    def format(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.width}d}"

    def parse(self, public_id: str) -> int | None:
        """The sequence number, or None for anything that `format` would not have produced."""
        match = re.fullmatch(re.escape(self.prefix) + r"([0-9]{1,18})", public_id)
        if match is None:
            return None
        number = int(match.group(1))
        return number if self.format(number) == public_id else None


@dataclass(frozen=True)
class HexIds:
    prefix: str
    width: int = 16

    def format(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.width}x}"

    def parse(self, public_id: str) -> int | None:
        match = re.fullmatch(re.escape(self.prefix) + f"([0-9a-f]{{{self.width}}})", public_id)
        if match is None:
            return None
        number = int(match.group(1), 16)
        # Row ids are signed 64-bit: anything larger names no row (and must not reach SQL).
        return number if number <= MAX_ROW_ID else None
