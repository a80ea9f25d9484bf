"""A request id on every answer (`X-Request-Id`), and on every log line written meanwhile.

A client's own id (up to 128 visible ASCII characters) is kept, so that its logs and ours
line up; otherwise one is made.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.types import Message, Receive, Scope, Send

from loadbay.api.http_middleware import HttpMiddleware

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
_VALID = re.compile(r"[\x21-\x7e]{1,128}")
current_request_id: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIds(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = dict(scope["headers"]).get(_HEADER_BYTES, b"").decode("latin-1")
        request_id = sent if _VALID.fullmatch(sent) else uuid.uuid4().hex
        token = current_request_id.set(request_id)

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != HEADER.encode()
                ]
                headers.append((HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            current_request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` (`-` outside a request) for the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True
