"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import SQLAlchemyError

from loadbay.api.deps import BrokerProbeDep, DatabaseDep
from loadbay.api.errors import render_error
from loadbay.api.responses import json_response
from loadbay.storage import schema_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database reachability")
async def health(request: Request, db: DatabaseDep) -> Response:
    try:
        await db.ping()
    except (SQLAlchemyError, OSError) as error:
        message = f"database unreachable: {error}"
        return render_error(request.app, request.url.path, 503, "database_unavailable", message)
    return json_response({"status": "ok", "database": db.dialect})


@router.get("/livez", summary="Liveness: the process answers (nothing else is checked)")
async def live() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: the database answers, its schema is the one this server needs, and the "
    "event broker takes a connection (on a node that runs the relay)",
    responses={
        503: {
            "description": "Not ready; the error envelope's code says why: "
            "`database_unavailable`, `schema_outdated` (run `loadbay migrate`) or "
            "`broker_unavailable` (unless LOADBAY_READY_NEEDS_BROKER=false; the details are "
            "in the server's log)."
        }
    },
)
async def ready(
    request: Request,
    db: DatabaseDep,
    broker: BrokerProbeDep,
) -> Response:
    path = request.url.path
    try:
        revision = await schema_revision.current_revision(db)
    except (SQLAlchemyError, OSError) as error:
        message = f"database unreachable: {error}"
        return render_error(request.app, path, 503, "database_unavailable", message)
    needed = schema_revision.HEAD
    if revision != needed:
        message = f"database schema is at revision {revision}; this server needs {needed}"
        return render_error(request.app, path, 503, "schema_outdated", message)
    answer = {"status": "ready", "database": db.dialect, "schema": revision}
    if broker is not None:
        problem = await broker.problem()
        if problem is not None:
            return render_error(request.app, path, 503, "broker_unavailable", problem)
        answer["broker"] = broker.broker
    return json_response(answer)
