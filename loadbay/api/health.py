"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from sqlalchemy.exc import SQLAlchemyError

from loadbay.api.deps import database
from loadbay.api.errors import error_response
from loadbay.api.responses import json_response
from loadbay.storage.database import Database

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database reachability")
async def health(db: Database = Depends(database)) -> Response:
    try:
        await db.ping()
    except (SQLAlchemyError, OSError) as error:
        return error_response(503, "database_unavailable", f"database unreachable: {error}")
    return json_response({"status": "ok", "database": db.dialect})
