"""Every HTTP answer: counted with its latency in /metrics, and told in one access log line.

The line (logger `loadbay.access`) carries method, path, status, duration, and — when known —
the caller's tenant and key prefix (never the key) and the number of records in the batch.
With LOADBAY_LOG_FORMAT=json these are fields of their own.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from starlette.types import Message, Receive, Scope, Send

from loadbay import metrics
from loadbay.api.http_middleware import HttpMiddleware

# An answer no route produced (404, a replay of an idempotent write): one metrics label, so
# that arbitrary paths cannot grow the number of series.
UNROUTED = "unrouted"

log = logging.getLogger("loadbay.access")


class AccessLog(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # unless an answer starts: the app raised

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", UNROUTED)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_SECONDS.labels(method, route).observe(seconds)
            _log_line(scope, method, status, seconds)


def _log_line(scope: Scope, method: str, status: int, seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    duration_ms = round(seconds * 1000, 1)
    context = _caller_and_records(scope.get("state", {}))
    told = "".join(f" {name}={value}" for name, value in context.items())
    fields = {
        "method": method,
        "path": scope["path"],
        "status": status,
        "duration_ms": duration_ms,
        **context,
    }
    log.info(
        "%s %s %s %.1f ms%s",
        method,
        # Quoted as sent: a decoded path could carry a line break and forge a log line.
        quote(scope["path"]),
        status,
        duration_ms,
        told,
        extra={"fields": fields},
    )


def _caller_and_records(state: dict[str, Any]) -> dict[str, Any]:
    """What the route learnt: the caller (set by authentication) and the batch's size."""
    context: dict[str, Any] = {}
    principal = state.get("principal")
    if principal is not None:
        context["tenant"] = principal.tenant_id
        if principal.key_prefix is not None:
            context["key_prefix"] = principal.key_prefix
    if "records" in state:
        context["records"] = state["records"]
    return context
