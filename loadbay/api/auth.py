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


async def authenticate(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <key>`; remembered for the request."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    if request.app.state.settings.auth == "off":
        principal = DEVELOPMENT_ADMIN
    else:
        principal = await _from_header(request)
    request.state.principal = principal
    return principal


def bearer_secret(request: Request) -> str | None:
    """What `Authorization: Bearer <secret>` carries, if the request has it."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


async def _from_header(request: Request) -> Principal:
    secret = bearer_secret(request)
    if secret is None:
        raise Unauthorized(
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    keys: ApiKeys = request.app.state.api_keys
    principal = await keys.authenticate(secret)
    if principal is None:
        raise Unauthorized(
            "invalid, revoked or expired API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


# Documents the scheme in OpenAPI (the "Authorize" button); the header is parsed above.
_bearer = HTTPBearer(auto_error=False, description="An API key: `lb_live_…`")


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: an authenticated caller holding `scope`, within its rate limit."""

    async def dependency(
        request: Request, _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal:
        principal = await authenticate(request)
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the {scope.value!r} scope")
        limits: RateLimits = request.app.state.rate_limits
        decision = await limits.hit(principal, scope)
        if decision is not None:
            request.state.rate_limit_headers = decision.headers()
            if not decision.allowed:
                raise RateLimited(
                    f"rate limit for {scope.value!r} exceeded", headers=decision.headers()
                )
        return principal

    return dependency


def tenant_for(scope: Scope) -> Callable[..., Awaitable[str]]:
    """A dependency: the tenant of an authenticated caller holding `scope`."""

    async def dependency(principal: Principal = Depends(require(scope))) -> str:
        return principal.tenant_id

    return dependency
