"""Whether the configured broker takes a connection now, for the readiness probe."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

from loadbay.config import Settings
from loadbay.events.brokers import TIMEOUT_SECONDS, broker_name, publisher_for


class BrokerProbe:
    """Connects as the relay would (address, credentials, stream or exchange) and hangs up.

    The answer is remembered for `remember_seconds`: load balancers probe every few seconds
    from every side, and each probe should not cost the broker a connection.
    """

    def __init__(self, settings: Settings, remember_seconds: float = 5.0) -> None:
        self._settings = settings
        self.broker = broker_name(settings.events_url or "")
        self._remember_seconds = remember_seconds
        self._lock = asyncio.Lock()
        self._checked_at = -float("inf")
        self._problem: str | None = None

    async def problem(self) -> str | None:
        """None when the broker could be reached, else why not."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._remember_seconds:
                self._problem = await self._connect_once()
                self._checked_at = time.monotonic()
            return self._problem

    async def _connect_once(self) -> str | None:
        publisher = publisher_for(self._settings)
        try:
            await asyncio.wait_for(publisher.connect(), TIMEOUT_SECONDS)
        except Exception as error:  # whatever the client raises, the broker is not usable
            return f"{self.broker} broker unreachable: {self._without_password(error)}"
        finally:
            with contextlib.suppress(Exception):
                await publisher.close()
        return None

    def _without_password(self, error: Exception) -> str:
        """The error's text, never the password (the probe answers without authentication)."""
        told = str(error) or type(error).__name__
        password = urlsplit(self._settings.events_url or "").password
        return told.replace(password, "***") if password else told
