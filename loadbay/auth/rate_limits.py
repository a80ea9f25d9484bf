"""Rate limits per API key and scope, on the `limits` library (memory or Redis storage)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from loadbay.auth.keys import Principal, Scope

log = logging.getLogger("loadbay.rate_limits")


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.reset_at - time.time())))
        return headers


def parse_limits(spec: str) -> dict[Scope, RateLimitItem]:
    """`scope=N/period,…` (e.g. `ingest:batch=600/minute`) into one limit per scope."""
    limits: dict[Scope, RateLimitItem] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        scope, _, rate = part.partition("=")
        limits[Scope(scope.strip())] = parse(rate.strip())
    return limits


class RateLimits:
    def __init__(self, storage_url: str, limits: Mapping[Scope, RateLimitItem]) -> None:
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        self._storage = storage_from_string(url)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._limits = dict(limits)

    def close(self) -> None:
        """Drop the storage's server connections (Redis), if it holds any."""
        # `limits` has no close API; its Redis storage keeps a client on `bridge.storage`.
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    async def hit(self, principal: Principal, scope: Scope) -> RateDecision | None:
        """Count one request; None when the scope has no limit or the storage is down."""
        item = self._limits.get(scope)
        if item is None:
            return None
        identity = principal.key_prefix or "anonymous"
        try:
            allowed = await self._limiter.hit(item, "loadbay", identity, scope.value)
            stats = await self._limiter.get_window_stats(item, "loadbay", identity, scope.value)
        except Exception:
            log.warning("rate-limit storage unavailable; request not limited", exc_info=True)
            return None
        return RateDecision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_at=stats.reset_time,
        )
