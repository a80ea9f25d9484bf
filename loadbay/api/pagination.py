"""`page` and `limit` query parameters and the `pagination` object."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Query
from pydantic import BaseModel

MAX_LIMIT = 100


@dataclass(frozen=True)
class PageRequest:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


class Pagination(BaseModel):
    page: int
    limit: int
    total: int


async def page_request(
    page: int = Query(1, ge=1, le=1_000_000, description="1-based page number."),
    limit: int = Query(20, ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}."),
) -> PageRequest:
    return PageRequest(page=page, limit=limit)


def pagination(request: PageRequest, total: int) -> dict[str, int]:
    return {"page": request.page, "limit": request.limit, "total": total}
