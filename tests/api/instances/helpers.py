"""Building records files and reading back what the instance API wrote."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson

BULK = "/instance-storage/instances/bulk"
INSTANCES = "/instance-storage/instances"
TYPE = "6a1f0ee4-2e0b-4a33-86e5-6f2f34c61a0b"
STATUS = "2a340d34-6b70-443a-bb1b-1b8d1c65d862"


def iid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def instance(n: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": iid(n),
        "title": f"Title {n}",
        "source": "MARC",
        "instanceTypeId": TYPE,
    }
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


def ndjson(*lines: Any) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
    )


async def upload(client: httpx.AsyncClient, name: str, *lines: Any, gz: bool = False) -> None:
    data = ndjson(*lines)
    response = await client.put(f"/files/{name}", content=gzip.compress(data) if gz else data)
    assert response.status_code == 201, response.text


async def bulk(client: httpx.AsyncClient, name: str, **body: Any) -> httpx.Response:
    return await client.post(BULK, json={"recordsFileName": name, **body})


async def text_of(client: httpx.AsyncClient, name: str) -> str:
    response = await client.get(f"/files/{name}")
    assert response.status_code == 200, response.text
    return response.text


async def stored(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    response = await client.get(f"{INSTANCES}/{iid(n)}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
