"""Whether the configured broker takes a connection now, for the readiness probe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import unquote, urlsplit

from loadbay.config import Settings
from loadbay.domain_events.brokers import broker_name, publisher_for
from loadbay.domain_events.publishing import TIMEOUT_SECONDS, Publisher

log = logging.getLogger("loadbay.relay")


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
        """None when the broker could be reached, else why not — in words safe to show to
        anyone (the probe needs no key): the details go to the log."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._remember_seconds:
                self._problem = await self._connect_once()
                self._checked_at = time.monotonic()
            return self._problem

    async def _connect_once(self) -> str | None:
        publisher: Publisher | None = None
        try:
            publisher = publisher_for(self._settings)
            await asyncio.wait_for(publisher.connect(), TIMEOUT_SECONDS)
        except Exception as error:  # whatever the client raises, the broker is not usable
            told = self._without_password(str(error))
            log.warning("readiness: %s broker unreachable: %s", self.broker, told)
            return f"{self.broker} broker unreachable ({type(error).__name__})"
        finally:
            if publisher is not None:
                with contextlib.suppress(Exception):
                    await publisher.close()
        return None

    def _without_password(self, text: str) -> str:
        password = urlsplit(self._settings.events_url or "").password
        for form in {password, unquote(password or "")} - {None, ""}:
            text = text.replace(str(form), "***")
        return text
