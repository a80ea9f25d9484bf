"""Operator API request builders: records of the built-in igaming template."""

from __future__ import annotations

from typing import Any

import httpx

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
