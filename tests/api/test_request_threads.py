"""No request leaves the event loop for FastAPI's thread pool.

A plain `def` endpoint or dependency is run there: a thread hop each, per request. Making
the dependencies `async def` cut a small batch's CPU by a quarter.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from loadbay.app import create_app


def _runs_in_a_thread(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return False
    if inspect.isclass(call):
        return True
    # An instance (HTTPBearer, say) is awaited when its own __call__ is a coroutine.
    return not inspect.iscoroutinefunction(type(call).__call__)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every API route, also those of included routers (kept apart since FastAPI 0.16x)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", route)
        yield from _api_routes(getattr(inner, "routes", []))


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def test_no_endpoint_or_dependency_runs_in_the_thread_pool(make_settings: Any) -> None:
    app = create_app(make_settings())
    routes = list(_api_routes(app.routes))
    threaded = [
        f"{route.path}: {getattr(call, '__qualname__', call)!r}"
        for route in routes
        for call in (route.endpoint, *_calls(route.dependant))
        if _runs_in_a_thread(call)
    ]

    assert len(routes) > 40  # every router was walked
    assert threaded == []


def test_the_check_sees_a_plain_function() -> None:
    def plain() -> None: ...

    async def asynchronous() -> None: ...

    assert _runs_in_a_thread(plain)
    assert not _runs_in_a_thread(asynchronous)
