"""Public ids such as `pa-020` or `job_00000000000000a1`: a prefix and the row's number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from loadbay.errors import NotFound

MAX_ROW_ID = 2**63 - 1


class IdCodec(Protocol):
    """A kind of public id: a row's number formatted, and parsed back."""

    def format(self, number: int) -> str: ...

    def parse(self, public_id: str) -> int | None: ...


def number_or_not_found(ids: IdCodec, public_id: str, what: str) -> int:
    """The row number `public_id` names; an id `ids` never formats names nothing: NotFound."""
    number = ids.parse(public_id)
    if number is None:
        raise not_found(what, public_id)
    return number


def not_found(what: str, public_id: str) -> NotFound:
    return NotFound(f"{what} {public_id} not found")


@dataclass(frozen=True)
class PublicIds:
    prefix: str
    width: int = 3

    def format(self, number: int) -> str:
        # zfill, not a nested format spec: a third of the time, once per record written.
        return self.prefix + str(number).zfill(self.width)

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
