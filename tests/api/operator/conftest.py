"""Operator API fixtures: a client whose tenant uses the built-in igaming template."""

from __future__ import annotations

import httpx
import pytest

from tests.api.operator.helpers import API, player, use_template
from tests.conftest import ClientFactory


@pytest.fixture
async def operator(make_client: ClientFactory) -> httpx.AsyncClient:
    """An admin of tenant `op1`, with the igaming template set."""
    client = await make_client(tenant="op1")
    await use_template(client)
    return client


@pytest.fixture
async def players(operator: httpx.AsyncClient) -> httpx.AsyncClient:
    """`operator`, with players 1 to 3 stored."""
    response = await operator.post(f"{API}/batch/entities", json=[player(n) for n in (1, 2, 3)])
    assert response.json()["data"]["succeeded"] == 3
    return operator
