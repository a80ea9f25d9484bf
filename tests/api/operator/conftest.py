"""Operator API fixtures: a client whose tenant uses the built-in igaming template."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory

API = "/operator-data-api"


def player(n: int, **data: Any) -> dict[str, Any]:
    return {
        "entityType": "player",
        "externalId": f"player_{n:03d}",
        "data": {
            "first_name": "Alice",
            "last_name": "Chen",
            "email": f"p{n}@example.com",
            "country": "GB",
            "currency": "GBP",
            "status": "active",
            **data,
        },
    }


def deposit(n: int, amount: float = 100.0, **extra: Any) -> dict[str, Any]:
    return {
        "externalId": f"player_{n:03d}",
        "eventType": "transaction",
        "data": {"type": "deposit", "amount": amount, "currency": "GBP"},
        **extra,
    }


async def use_template(client: httpx.AsyncClient, template_id: str = "igaming") -> None:
    response = await client.put(f"{API}/settings", json={"templateId": template_id})
    assert response.status_code == 200, response.text


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
