"""Counts every HTTP answer and its latency, labelled by route template (never the raw path)."""

from __future__ import annotations

import time

from starlette.types import Message, Receive, Scope, Send

from loadbay import metrics
from loadbay.api.http_middleware import HttpMiddleware

# An answer no route produced (404, a replay of an idempotent write): one label, so that
# arbitrary paths cannot grow the number of series.
UNROUTED = "unrouted"


class RequestMetrics(HttpMiddleware):
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
            route = getattr(scope.get("route"), "path", UNROUTED)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
