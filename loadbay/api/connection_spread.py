"""`Connection: close` on a response of a worker that holds more than its share of the
server's connections, so that its client reconnects, to another worker most likely
(loadbay.connection_balance)."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from loadbay.api.http_middleware import HttpMiddleware
from loadbay.connection_balance import should_reconnect, spreading

_CLOSE = (b"connection", b"close")


class SpreadConnections(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not spreading():  # one worker alone, or the app outside `loadbay serve`
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        # Only once the request's body is read whole: closing while the client still sends
        # would reset the connection under the answer (an early 413 or 401, say).
        body_read = b"transfer-encoding" not in headers and headers.get(
            b"content-length", b"0"
        ) in (b"0", b"")

        async def reading() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read = True
            return message

        async def maybe_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and body_read and should_reconnect():
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        await self.app(scope, reading, maybe_closing)
