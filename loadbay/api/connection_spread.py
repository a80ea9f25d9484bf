"""`Connection: close` on a response of a worker that holds more than its share of the
server's connections, so that its client reconnects, to another worker most likely
(loadbay.connection_balance)."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from loadbay.api.http_middleware import HttpMiddleware
from loadbay.connection_balance import should_reconnect

_CLOSE = (b"connection", b"close")


class SpreadConnections(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def maybe_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and should_reconnect():
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        await self.app(scope, receive, maybe_closing)
