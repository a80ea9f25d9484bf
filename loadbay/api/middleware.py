"""ASGI middleware: idempotency keys on every write, rate-limit headers on every answer."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loadbay.api.auth import authentication
from loadbay.api.body import read_bytes
from loadbay.api.errors import (
    is_database_outage,
    render_domain_error,
    render_error,
    render_outage,
)
from loadbay.api.http_middleware import HttpMiddleware
from loadbay.auth.idempotency import HEARTBEAT, ClaimState, Idempotency, StoredResponse
from loadbay.background import running, sleep_unless_stopped
from loadbay.errors import LoadbayError
from loadbay.ingest.jobs import IdempotentRequest

log = logging.getLogger("loadbay.api")

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Where a route finds the Idempotency-Key it runs under: request.state.<this>.
IDEMPOTENT_REQUEST = "idempotent_request"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# Response headers worth replaying; the rest are recomputed by the server.
_KEPT_HEADERS = {"location", "content-type"}


class RateLimitHeaders(HttpMiddleware):
    """Adds the X-RateLimit-* headers a route's rate-limit check left on the request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:

        async def send_with_headers(message: Message) -> None:
            extra = scope.get("state", {}).get("rate_limit_headers")
            if message["type"] == "http.response.start" and extra:
                names = {name.lower() for name, _ in message.get("headers", [])}
                added = [
                    (k.lower().encode(), v.encode())
                    for k, v in extra.items()
                    if k.lower().encode() not in names
                ]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class IdempotencyKeys(HttpMiddleware):
    """Replays the stored response of a write repeated with the same `Idempotency-Key`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        super().__init__(app)
        self._max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        key = request.headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        path = scope["path"]
        if not _VALID_KEY.fullmatch(key):
            message = "Idempotency-Key must be 1 to 255 visible ASCII characters"
            await render_error(app, path, 400, "invalid_idempotency_key", message)(
                scope, receive, send
            )
            return
        try:
            principal = await authentication(request).caller(request)
            body = await read_bytes(request, self._max_body_bytes)
            await self._handle(scope, send, app, principal.tenant_id, key, body)
        except LoadbayError as error:
            await render_domain_error(app, path, error)(scope, receive, send)
        except Exception as error:
            # Here, before and after the route, no exception handler of the app applies.
            if not is_database_outage(error):
                raise
            await render_outage(app, path)(scope, receive, send)

    async def _handle(
        self, scope: Scope, send: Send, app: Any, tenant_id: str, key: str, body: bytes
    ) -> None:
        path = scope["path"]
        service: Idempotency = app.state.idempotency
        fingerprint = hashlib.sha256(
            b"\n".join([scope["method"].encode(), path.encode(), scope["query_string"], body])
        ).hexdigest()
        claim = await service.claim(tenant_id, key, fingerprint)
        replay_receive = _replaying(body)
        if claim.state is ClaimState.MISMATCH:
            message = "this Idempotency-Key was used with a different request"
            response = render_error(app, path, 422, "idempotency_key_reused", message)
        elif claim.state is ClaimState.IN_PROGRESS:
            message = "a request with this Idempotency-Key is still being processed"
            response = render_error(app, path, 409, "idempotency_key_in_use", message)
        elif claim.state is ClaimState.REPLAY and claim.response is not None:
            stored = claim.response
            response = Response(
                stored.body.encode(),
                status_code=stored.status_code,
                headers={**stored.headers, "idempotent-replayed": "true"},
            )
        else:
            # Batch services tie the job they commit to this key (see BatchJobs.run).
            assert claim.claimed_at is not None
            scope.setdefault("state", {})[IDEMPOTENT_REQUEST] = IdempotentRequest(
                tenant_id, key, claim.claimed_at, claim.committed_job
            )
            await self._first_time(scope, replay_receive, send, service, tenant_id, key)
            return
        await response(scope, replay_receive, send)

    async def _first_time(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        service: Idempotency,
        tenant_id: str,
        key: str,
    ) -> None:
        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.decode().lower() in _KEPT_HEADERS:
                        headers[name.decode().lower()] = value.decode()
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            async with running(
                lambda stop: _keep_alive(service, tenant_id, key, stop), cancel=True
            ):
                await self.app(scope, receive, recording_send)
        except BaseException:
            await _release(service, tenant_id, key)
            raise
        if status >= 500 or status == 429:
            # A server fault, or "too many requests, come back later", is not an answer: the
            # client's retry with the same key must run the request, not replay the refusal.
            await _release(service, tenant_id, key)
            return
        body = b"".join(chunks).decode("utf-8", errors="replace")
        try:
            await service.complete(tenant_id, key, StoredResponse(status, body, headers))
        except Exception:
            # The answer is sent already. The claim goes quiet; a resend of a batch is then
            # answered from its job, other writes run again.
            log.warning("could not store the answer for Idempotency-Key %r", key, exc_info=True)


async def _keep_alive(service: Idempotency, tenant_id: str, key: str, stop: asyncio.Event) -> None:
    """Renew the claim while its request runs (see idempotency.ABANDONED_AFTER)."""
    while True:
        await sleep_unless_stopped(stop, HEARTBEAT.total_seconds())
        if stop.is_set():
            return
        with contextlib.suppress(Exception):  # the next beat, or the claim's expiry, will do
            await service.beat(tenant_id, key)


async def _release(service: Idempotency, tenant_id: str, key: str) -> None:
    """Free the claim for a retry; if the database is away, its heartbeat stops instead."""
    with contextlib.suppress(Exception):
        await service.release(tenant_id, key)


def idempotent_request(request: Request) -> IdempotentRequest | None:
    """The Idempotency-Key (and any job it committed before) this request runs under."""
    found: IdempotentRequest | None = getattr(request.state, IDEMPOTENT_REQUEST, None)
    return found


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
