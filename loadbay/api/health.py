"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.exc import SQLAlchemyError

from loadbay.api.deps import database
from loadbay.api.errors import render_error
from loadbay.api.responses import json_response
from loadbay.storage.database import Database

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database reachability")
async def health(request: Request, db: Database = Depends(database)) -> Response:
    try:
        await db.ping()
    except (SQLAlchemyError, OSError) as error:
        message = f"database unreachable: {error}"
        return render_error(request.app, request.url.path, 503, "database_unavailable", message)
    return json_response({"status": "ok", "database": db.dialect})
