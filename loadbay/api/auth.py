"""Authentication, scope checks and rate limits as route dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loadbay.auth.keys import ApiKeys, Principal, Scope
from loadbay.auth.rate_limits import RateLimits
from loadbay.auth.tenants import DEFAULT_TENANT_ID
from loadbay.errors import Forbidden, RateLimited, Unauthorized

EVERY_SCOPE = frozenset(Scope)
# Who every caller is with LOADBAY_AUTH=off (local development only).
DEVELOPMENT_ADMIN = Principal(tenant_id=DEFAULT_TENANT_ID, key_prefix=None, scopes=EVERY_SCOPE)


class Authentication:
    """Who a request's caller is, and whether it may act: API keys, scopes, rate limits.

    Built once at start-up (loadbay.app); routes, middleware and the dashboard share it.
    """

    def __init__(self, keys: ApiKeys, limits: RateLimits, *, keys_required: bool) -> None:
        self._keys = keys
        self._limits = limits
        self._keys_required = keys_required

    async def holder(self, secret: str) -> Principal | None:
        """The holder of a valid key; with keys not required, the development admin."""
        if not self._keys_required:
            return DEVELOPMENT_ADMIN
        return await self._keys.authenticate(secret) if secret else None

    async def caller(self, request: Request) -> Principal:
        """The caller, from `Authorization: Bearer <key>`; remembered for the request."""
        cached = getattr(request.state, "principal", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        secret = bearer_secret(request)
        if secret is None and self._keys_required:
            raise Unauthorized(
                "missing API key: send Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = await self.holder(secret or "")
        if principal is None:
            raise Unauthorized(
                "invalid, revoked or expired API key", headers={"WWW-Authenticate": "Bearer"}
            )
        request.state.principal = principal
        return principal

    async def admit(self, request: Request, scope: Scope) -> Principal:
        """The caller, if it holds `scope` and is within its rate limit."""
        principal = await self.caller(request)
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the {scope.value!r} scope")
        decision = await self._limits.hit(principal, scope)
        if decision is not None:
            request.state.rate_limit_headers = decision.headers()
            if not decision.allowed:
                raise RateLimited(
                    f"rate limit for {scope.value!r} exceeded", headers=decision.headers()
                )
        return principal


def authentication(request: Request) -> Authentication:
    """The app's Authentication (also for middleware, which runs outside dependencies)."""
    return request.app.state.authentication  # type: ignore[no-any-return]


def bearer_secret(request: Request) -> str | None:
    """What `Authorization: Bearer <secret>` carries, if the request has it."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


# Documents the scheme in OpenAPI (the "Authorize" button); the header is parsed above.
_bearer = HTTPBearer(auto_error=False, description="An API key: `lb_live_…`")


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: an authenticated caller holding `scope`, within its rate limit."""

    async def dependency(
        request: Request, _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal:
        return await authentication(request).admit(request, scope)

    return dependency


def tenant_for(scope: Scope) -> Callable[..., Awaitable[str]]:
    """A dependency: the tenant of an authenticated caller holding `scope`."""

    async def dependency(principal: Principal = Depends(require(scope))) -> str:
        return principal.tenant_id

    return dependency
