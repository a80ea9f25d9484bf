"""The dashboard's routes (/ui): log in with an API key, jobs, a job, its error files."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.templating import Jinja2Templates

from loadbay.api.auth import authentication
from loadbay.api.deps import DashboardDep, FileStoreDep
from loadbay.auth.keys import Principal, Scope
from loadbay.errors import NotFound
from loadbay.files.store import check_name
from loadbay.ui.views import CHART_DAYS, FAILURES_SHOWN, KINDS, STATUSES

router = APIRouter(prefix="/ui", include_in_schema=False)
COOKIE = "loadbay_key"
_MAX_LOGIN_BODY = 4096
_PALETTE = ("#2f7d4f", "#2b6cb0", "#a05a00", "#7b3fa0", "#b42318", "#4a5568")
templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "ui" / "templates"))


async def _principal(request: Request) -> Principal | None:
    """Who the cookie's key belongs to, if it may read; None sends the browser to log in."""
    return await _reader(request, request.cookies.get(COOKIE, ""))


async def _reader(request: Request, secret: str) -> Principal | None:
    """The key's holder, if the key is valid and may read."""
    principal = await authentication(request).holder(secret)
    if principal is None or not principal.allows(Scope.READ):
        return None
    request.state.principal = principal  # for the access log line
    return principal


def _to_login() -> Response:
    return RedirectResponse("/ui/login", status_code=303)


@router.get("/login")
async def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"tenant": None})


@router.post("/login")
async def login(request: Request) -> Response:
    body = await request.body()
    secret = parse_qs(body[:_MAX_LOGIN_BODY].decode(errors="replace")).get("key", [""])[0].strip()
    if await _reader(request, secret) is None:
        error = "That key is unknown, revoked, expired, or may not read."
        return templates.TemplateResponse(
            request, "login.html", {"tenant": None, "error": error}, status_code=401
        )
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = _to_login()
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("")
async def jobs_page(
    request: Request, dashboard: DashboardDep, kind: str = "", status: str = ""
) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _to_login()
    tenant = principal.tenant_id
    jobs = await dashboard.jobs(tenant, kind or None, status or None)
    bars, collections, day_labels = await dashboard.chart(tenant)
    context = {
        "tenant": tenant,
        "jobs": jobs,
        "kinds": KINDS,
        "statuses": STATUSES,
        "kind": kind if kind in KINDS else None,
        "status": status if status in STATUSES else None,
        "bars": bars,
        "collections": collections,
        "palette": _PALETTE,
        "chart_days": CHART_DAYS,
        "day_labels": day_labels,
        "keys": await dashboard.keys(tenant),
        # While a job runs the page follows it closely; otherwise it still shows new jobs.
        "refresh": 2 if any(j.status == "processing" for j in jobs) else 5,
    }
    return templates.TemplateResponse(request, "jobs.html", context)


@router.get("/jobs/{job_id}")
async def job_page(request: Request, dashboard: DashboardDep, job_id: str) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _to_login()
    found = await dashboard.job(principal.tenant_id, job_id)
    if found is None:
        raise NotFound(f"job {job_id} not found")
    job, failures = found
    context = {
        "tenant": principal.tenant_id,
        "job": job,
        "failures": failures,
        "shown": FAILURES_SHOWN,
        "refresh": 2 if job.status == "processing" else None,
    }
    return templates.TemplateResponse(request, "job.html", context)


@router.get("/files/{name:path}")
async def file_download(request: Request, files: FileStoreDep, name: str) -> Response:
    """A file of the tenant's space (a job's error files), for the logged-in browser."""
    principal = await _principal(request)
    if principal is None:
        return _to_login()
    check_name(name)
    chunks = await files.read(principal.tenant_id, name)
    return StreamingResponse(chunks, media_type="text/plain; charset=utf-8")
